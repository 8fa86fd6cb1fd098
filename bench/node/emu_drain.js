'use strict';
// Child of emu_methods.js: drains N messages from one emulator subscription with one method and reports
// drain time, emulator CPU (from /proc/<javaPid>/stat) and its own CPU.
// Config comes as JSON in argv[2]. Talks to the parent over IPC (progress, result).
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GCE_METADATA_HOST = '127.0.0.1:9';
const NM = process.env.NODE_MODULES || require('path').join(__dirname, 'node_modules');
const fs = require('fs');
const http = require('http');

const cfg = JSON.parse(process.argv[2]);
const { port, project, sub, n, javaPid, method } = cfg;
const subPath = `projects/${project}/subscriptions/${sub}`;
const HZ = 100;

function emuTicks() {
  const f = fs.readFileSync(`/proc/${javaPid}/stat`, 'utf8');
  const p = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(p[11]) + Number(p[12]); // utime + stime
}

const seen = new Set();
let unique = 0, dups = 0, ackedDone = 0, pulls = 0, emptyPulls = 0, ackReqs = 0, modAckReqs = 0;
let t0, c0, e0;
let finished = false;
let finishResolve;
const finishedP = new Promise((r) => { finishResolve = r; });

function noteMsg(id) {
  if (seen.has(id)) { dups++; return false; }
  seen.add(id); unique++; return true;
}
function progress() { if (process.send) process.send({ type: 'progress', acked: ackedDone, unique }); }
const progTimer = setInterval(progress, 50);

function checkDone() {
  if (!finished && ackedDone >= n) { finished = true; finishResolve(); }
}

// ---------- ack batching shared by REST and gRPC unary ----------
function makeAcker(sendAck, batch, conc, idleMs) {
  let buf = [];
  let inflight = 0;
  let timer = null;
  function flush(force) {
    while (buf.length && inflight < conc && (force || buf.length >= batch)) {
      const ids = buf.splice(0, batch);
      inflight++; ackReqs++;
      sendAck(ids).then(() => {
        inflight--; ackedDone += ids.length; checkDone(); flush(false); schedule();
      }, (e) => { inflight--; console.error('ack error', e.message); buf.push(...ids); schedule(); });
    }
  }
  function schedule() {
    if (timer || !buf.length) return;
    timer = setTimeout(() => { timer = null; flush(true); schedule(); }, idleMs);
  }
  return {
    add(ids) { buf.push(...ids); flush(false); schedule(); },
    get pending() { return buf.length; },
  };
}

// ---------- REST ----------
function restClient() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  function post(path, body, timeoutMs) {
    return new Promise((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(body));
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': data.length } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const s = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} ${s.slice(0, 200)}`));
          resolve(JSON.parse(s));
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(data);
    });
  }
  return { post, agent };
}

async function runRest() {
  const { post, agent } = restClient();
  const P = cfg.inflight || 8, M = cfg.maxMessages || 100, RI = !!cfg.returnImmediately;
  const acker = makeAcker((ids) => post(`/v1/${subPath}:acknowledge`, { ackIds: ids }, 60000),
    cfg.ackBatch || 100, cfg.ackConc || 2, cfg.ackIdleMs || 20);
  async function worker() {
    while (!finished && unique < n) {
      let r;
      try { r = await post(`/v1/${subPath}:pull`, { maxMessages: M, returnImmediately: RI }, 120000); }
      catch (e) { if (!finished) console.error('pull', e.message); continue; }
      pulls++;
      const rm = r.receivedMessages || [];
      if (!rm.length) emptyPulls++;
      const ids = [];
      for (const m of rm) { noteMsg(m.message.messageId); ids.push(m.ackId); }
      if (ids.length) acker.add(ids);
    }
  }
  for (let i = 0; i < P; i++) worker();
  await finishedP;
  agent.destroy();
}

// ---------- gRPC ----------
function gapic() {
  const { v1 } = require(`${NM}/@google-cloud/pubsub`);
  const grpc = require(`${NM}/@grpc/grpc-js`);
  return new v1.SubscriberClient({ servicePath: '127.0.0.1', port, sslCreds: grpc.credentials.createInsecure(),
    projectId: project });
}

let preClient = null;
async function runGrpcUnary() {
  const client = preClient;
  const P = cfg.inflight || 2, M = cfg.maxMessages || 1000, RI = !!cfg.returnImmediately;
  const acker = makeAcker((ids) => client.acknowledge({ subscription: subPath, ackIds: ids }),
    cfg.ackBatch || 1000, cfg.ackConc || 2, cfg.ackIdleMs || 20);
  async function worker() {
    while (!finished && unique < n) {
      let r;
      try {
        [r] = await client.pull({ subscription: subPath, maxMessages: M, returnImmediately: RI },
          { timeout: 120000, retry: null });
      } catch (e) { if (!finished) console.error('pull', e.message); continue; }
      pulls++;
      const rm = r.receivedMessages || [];
      if (!rm.length) emptyPulls++;
      if (cfg.logSizes && pulls <= 5) console.error('pull size', rm.length);
      const ids = [];
      for (const m of rm) { noteMsg(m.message.messageId); ids.push(m.ackId); }
      if (ids.length) acker.add(ids);
    }
  }
  for (let i = 0; i < P; i++) worker();
  await finishedP;
  client.close().catch(() => {});
}

async function runRawSP() {
  const client = preClient;
  const K = cfg.ackBatch || 1000, idleMs = cfg.ackIdleMs || 20;
  const nStreams = cfg.streams || 1;
  const unaryAck = cfg.unaryAck ? makeAcker((ids) => client.acknowledge({ subscription: subPath, ackIds: ids }),
    K, cfg.ackConc || 2, idleMs) : null;
  const streams = [];
  let lastWrite = Promise.resolve();
  for (let s = 0; s < nStreams; s++) {
    const st = client.streamingPull({ timeout: 600000 });
    const init = { subscription: subPath, streamAckDeadlineSeconds: 60 };
    if (cfg.maxOutstandingMessages !== undefined) init.maxOutstandingMessages = cfg.maxOutstandingMessages;
    if (cfg.maxOutstandingBytes !== undefined) init.maxOutstandingBytes = cfg.maxOutstandingBytes;
    st.write(init);
    let buf = [], timer = null, sizes = 0;
    const flush = () => {
      if (timer) { clearTimeout(timer); timer = null; }
      while (buf.length) {
        const ids = buf.splice(0, K);
        ackReqs++;
        lastWrite = new Promise((res) => st.write({ ackIds: ids }, () => res()));
        lastWrite.then(() => { ackedDone += ids.length; checkDone(); });
      }
    };
    st.on('data', (resp) => {
      pulls++;
      const rm = resp.receivedMessages || [];
      if (cfg.logSizes && sizes++ < 5) console.error('resp size', rm.length);
      const ids = [];
      for (const m of rm) { noteMsg(m.message.messageId); ids.push(m.ackId); }
      if (unaryAck) { unaryAck.add(ids); return; }
      buf.push(...ids);
      if (buf.length >= K) flush();
      else if (!timer) timer = setTimeout(flush, idleMs);
    });
    st.on('error', (e) => { if (!finished) console.error('stream error', e.message); });
    streams.push(st);
  }
  await finishedP;
  for (const st of streams) { st.end(); }
  client.close().catch(() => {});
}

async function runNodeClient() {
  const { PubSub } = require(`${NM}/@google-cloud/pubsub`);
  process.env.PUBSUB_EMULATOR_HOST = `127.0.0.1:${port}`;
  const pubsub = new PubSub({ projectId: project });
  const opts = {};
  if (cfg.flowControl) opts.flowControl = cfg.flowControl;
  if (cfg.batching) opts.batching = cfg.batching;
  const s = pubsub.subscription(sub, opts);
  let acks = 0;
  s.on('message', (m) => { noteMsg(m.id); m.ack(); acks++; ackedDone = acks; checkDone(); });
  s.on('error', (e) => console.error('sub error', e.message));
  await finishedP;
  await s.close(); // flushes pending acks
}

(async () => {
  if (method === 'grpc-pull' || method === 'raw-sp') {
    preClient = gapic();
    await preClient.initialize();
    await preClient.getSubscription({ subscription: subPath }); // connect before timing
  }
  if (method === 'node') require(`${NM}/@google-cloud/pubsub`);
  const cu0 = process.cpuUsage();
  t0 = process.hrtime.bigint(); e0 = emuTicks();
  if (method === 'rest') await runRest();
  else if (method === 'grpc-pull') await runGrpcUnary();
  else if (method === 'raw-sp') await runRawSP();
  else if (method === 'node') await runNodeClient();
  else throw new Error('unknown method ' + method);
  const t1 = process.hrtime.bigint(); const e1 = emuTicks();
  const cu = process.cpuUsage(cu0);
  clearInterval(progTimer);
  ackedDone = Math.max(ackedDone, n); progress();
  const secs = Number(t1 - t0) / 1e9;
  const res = { secs, unique, dups, pulls, emptyPulls, ackReqs,
    emuCpuS: (e1 - e0) / HZ, consCpuS: (cu.user + cu.system) / 1e6, e1 };
  if (process.send) process.send({ type: 'result', res }); else console.log(JSON.stringify(res));
  setTimeout(() => process.exit(0), 300);
})().catch((e) => { console.error(e); process.exit(1); });
