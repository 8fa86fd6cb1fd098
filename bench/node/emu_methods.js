'use strict';
// Which way of consuming from the Pub/Sub emulator costs the emulator the least CPU per message?
// Orchestrator: for each run, a fresh emulator (as bench/run starts it), JIT warm-up of the publish
// path (40k to a topic without subscription) and of the method's drain path (10k drained, not
// measured), then a 50k x 1 KB backlog, wait for the emulator CPU to settle, and drain it in a
// child (emu_drain.js). mode "paced": no pre-fill; publish 50k in batches of 500 while draining,
// keeping published - acked <= 5000.
//   node emu_methods.js OUT.jsonl '<json array of runs>'     (PSX_N=50000 PSX_WARM_DRAIN=10000)
// A run: {"label":"x","method":"node"|"rest"|"grpc-pull"|"raw-sp", "mode":"paced"?, ...options of
// emu_drain.js: inflight, maxMessages, returnImmediately, ackBatch, ackConc, ackIdleMs, streams,
// unaryAck, maxOutstandingMessages}. e.g.
//   node emu_methods.js /tmp/r.jsonl '[{"label":"node","method":"node"},
//     {"label":"sp10","method":"raw-sp","streams":10,"ackBatch":2000}]'
const { spawn, fork } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');

const WORK = process.env.PSX_DIR || fs.mkdtempSync(require('path').join(require('os').tmpdir(), 'psx-'));
const EMU = process.env.DR_TEST_EMULATOR_CMD || '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';
const PROJECT = 'bench';
const out = process.argv[2];
const runs = JSON.parse(process.argv[3]);
const N = Number(process.env.PSX_N || 50000);
const WARM_DRAIN = Number(process.env.PSX_WARM_DRAIN || 10000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}
function ticks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const p = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(p[11]) + Number(p[12]);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
function req(port, method, path, body, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const data = body ? Buffer.from(JSON.stringify(body)) : null;
    const r = http.request({ host: '127.0.0.1', port, path, method, agent,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      const c = []; res.on('data', (x) => c.push(x));
      res.on('end', () => res.statusCode === 200 ? resolve(Buffer.concat(c).toString()) : reject(new Error(`${method} ${path} ${res.statusCode}`)));
    });
    r.setTimeout(timeoutMs, () => r.destroy(new Error('timeout')));
    r.on('error', reject);
    r.end(data || undefined);
  });
}

const payload = Buffer.alloc(1024);
for (let i = 0; i < 1024; i++) payload[i] = 97 + (i * 7) % 26;
const payloadB64 = payload.toString('base64');
let seq = 0;
function batchBody(k) {
  const messages = [];
  for (let i = 0; i < k; i++) messages.push({ data: payloadB64, attributes: { seq: String(seq++), type: 'test' } });
  return { messages };
}
async function publish(port, topic, total, batch = 1000, conns = 2) {
  let left = total;
  async function w() { while (left > 0) { const k = Math.min(batch, left); left -= k; await req(port, 'POST', `/v1/projects/${PROJECT}/topics/${topic}:publish`, batchBody(k)); } }
  await Promise.all(Array.from({ length: conns }, w));
}

async function settle(pid, maxS = 40) {
  // settled: <= 3 ticks (0.03 cores) in each of two consecutive 1 s windows
  let ok = 0; const t = Date.now(); let prev = ticks(pid);
  while (Date.now() - t < maxS * 1000) {
    await sleep(1000); const c = ticks(pid);
    if (c - prev <= 3) { if (++ok >= 2) return true; } else ok = 0;
    prev = c;
  }
  return false;
}

async function startEmu() {
  const port = await freePort();
  fs.writeFileSync(`${WORK}/jul.properties`, '.level=WARNING\n');
  const log = fs.openSync(`${WORK}/emulator-${port}.log`, 'w');
  const p = spawn(EMU, ['--host=127.0.0.1', `--port=${port}`], { cwd: WORK, stdio: ['ignore', log, log],
    env: { ...process.env, JAVA_OPTS: `-Xmx1g -Dio.netty.noPreferDirect=true -Dio.netty.allocator.type=unpooled -Djava.util.logging.config.file=${WORK}/jul.properties` } });
  for (let i = 0; i < 300; i++) {
    await sleep(200);
    try { await req(port, 'GET', '/', null, 2000); return { port, proc: p, pid: p.pid }; } catch (e) { /* not yet */ }
  }
  throw new Error('emulator did not start');
}
async function stopEmu(e) {
  e.proc.kill('SIGTERM');
  await new Promise((r) => { const t = setTimeout(() => { e.proc.kill('SIGKILL'); r(); }, 8000); e.proc.on('exit', () => { clearTimeout(t); r(); }); });
}

function drain(emu, sub, n, run, onProgress) {
  return new Promise((resolve, reject) => {
    const cfg = { ...run, port: emu.port, project: PROJECT, sub, n, javaPid: emu.pid };
    const c = fork(require('path').join(__dirname, 'emu_drain.js'), [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let res = null;
    c.on('message', (m) => { if (m.type === 'progress' && onProgress) onProgress(m); if (m.type === 'result') res = m.res; });
    const to = setTimeout(() => { c.kill('SIGKILL'); }, 300000);
    c.on('exit', (code) => { clearTimeout(to); res ? resolve(res) : reject(new Error(`drain exited ${code}`)); });
  });
}

async function one(run) {
  const emu = await startEmu();
  try {
    await req(emu.port, 'PUT', `/v1/projects/${PROJECT}/topics/warm`, {});
    await publish(emu.port, 'warm', 40000);
    await req(emu.port, 'PUT', `/v1/projects/${PROJECT}/topics/tst`, {});
    await req(emu.port, 'PUT', `/v1/projects/${PROJECT}/subscriptions/wrm`, { topic: `projects/${PROJECT}/topics/tst`, ackDeadlineSeconds: 60 });
    // warm the drain path of this method
    await publish(emu.port, 'tst', WARM_DRAIN);
    await drain(emu, 'wrm', WARM_DRAIN, run);
    await req(emu.port, 'DELETE', `/v1/projects/${PROJECT}/subscriptions/wrm`);
    await req(emu.port, 'PUT', `/v1/projects/${PROJECT}/subscriptions/sub`, { topic: `projects/${PROJECT}/topics/tst`, ackDeadlineSeconds: 60 });
    const paced = run.mode === 'paced';
    let pubDone = null;
    if (!paced) { await publish(emu.port, 'tst', N); }
    await settle(emu.pid);
    const idle0 = ticks(emu.pid); await sleep(2000); const idleRate = (ticks(emu.pid) - idle0) / 2; // ticks/s
    const la = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    let acked = 0;
    const e0 = ticks(emu.pid); const w0 = Date.now();
    let firstPub = 0;
    if (paced) {
      let published = 0;
      pubDone = (async () => {
        // one publisher connection per 500-message batch, 2 connections, like bench_load
        async function w() {
          while (published < N) {
            if (published - acked > 5000 - 500) { await sleep(2); continue; }
            const k = Math.min(500, N - published); published += k;
            await req(emu.port, 'POST', `/v1/projects/${PROJECT}/topics/tst:publish`, batchBody(k));
          }
        }
        firstPub = Date.now();
        await Promise.all([w(), w()]);
      })();
    }
    const r = await drain(emu, 'sub', N, run, (m) => { acked = m.acked; });
    if (pubDone) await pubDone;
    const wall = (Date.now() - w0) / 1000;
    const eDrain = ticks(emu.pid) - e0;
    await settle(emu.pid, 30);
    const eAll = ticks(emu.pid) - e0;
    const afterS = (Date.now() - w0) / 1000;
    const rssKb = Number((fs.readFileSync(`/proc/${emu.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/) || [])[1]);
    const rec = { label: run.label, run, load: Number(la), secs: r.secs, wall, msgsPerS: N / r.secs,
      emuUsPerMsgDrain: r.emuCpuS * 1e6 / N, emuUsPerMsgSettled: ((eAll - idleRate * afterS) / 100) * 1e6 / N,
      emuCores: r.emuCpuS / r.secs, consUsPerMsg: r.consCpuS * 1e6 / N, consCores: r.consCpuS / r.secs,
      unique: r.unique, dups: r.dups, pulls: r.pulls, emptyPulls: r.emptyPulls, ackReqs: r.ackReqs,
      idleRate, emuRssMiB: rssKb / 1024, ts: new Date().toISOString() };
    fs.appendFileSync(out, JSON.stringify(rec) + '\n');
    console.log(`${run.label}: ${rec.msgsPerS.toFixed(0)} msg/s in ${r.secs.toFixed(1)} s, emu ${rec.emuUsPerMsgDrain.toFixed(0)} us/msg (settled ${rec.emuUsPerMsgSettled.toFixed(0)}), ` +
      `emu ${rec.emuCores.toFixed(2)} cores, consumer ${rec.consUsPerMsg.toFixed(0)} us/msg ${rec.consCores.toFixed(2)} cores, dups ${r.dups}, pulls ${r.pulls}, acks ${r.ackReqs}, load ${la}`);
  } finally {
    await stopEmu(emu);
  }
}

(async () => {
  for (const run of runs) {
    try { await one(run); } catch (e) { console.log(`${run.label}: FAILED ${e.stack}`); }
  }
  process.exit(0);
})();
