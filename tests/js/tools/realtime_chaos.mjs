// A soak under faults, run by hand (not part of `make test`):
//
//   DR_BIN=build-test/data-router scripts/test-env node --test tests/js/tools/realtime_chaos.mjs
//   DR_CHAOS_SEED=N DR_CHAOS_SECONDS=60 DR_BIN=... scripts/test-env node --test ...
//
// Two instances behind a round-robin TCP balancer share one PostgreSQL database and one Redis.
// Four publishers send notifications for a dozen users through the publish API and through the
// client-notifications topic of either instance, retrying what fails with the same notification
// ids (about 1,500 a second on the test build). Meanwhile instances are stopped (SIGTERM) or
// killed (SIGKILL) and restarted, Redis is killed and restarted, and every client connection is
// cut. The clients are web/data-router-client.js (WebSocket with SSE fallback, or SSE only),
// which reconnect through the balancer and resume.
//
// At the end each client must have every notification published for its user exactly once,
// with the seq the store gave it, and nothing else. The fault schedule comes from a seeded
// generator (DR_CHAOS_SEED, printed); DR_CHAOS_SECONDS sets how long faults go on (default 30).
// DR_CHAOS_PG=1 adds PostgreSQL crashes (an immediate stop, then a start) to the faults, in the
// share of connection cuts; it needs scripts/test-env's cluster (DR_TEST_PG_BIN, _DATA).
// On a failure it says which seqs a client lacks and leaves the servers' logs, the client's
// connection log and the fault timeline in $TMPDIR/dr-chaos-SEED/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import WebSocket from 'ws';
import {
  REDIS_YAML,
  Redis,
  createDatabase,
  freePort,
  needPgAndRedis,
  notification,
  request,
  sleep,
  startServer,
  userToken,
  waitFor,
} from '../realtime-lib.mjs';

const SRC = process.env.DR_SOURCE_DIR || path.resolve(import.meta.dirname, '../../..');
const { DataRouterClient } = await import(
  pathToFileURL(path.join(SRC, 'web/data-router-client.js')).href
);

const PG = process.env.DR_TEST_PG_URL;
const skip = needPgAndRedis();
const SEED = Number(process.env.DR_CHAOS_SEED || Math.floor(Math.random() * 2 ** 31));
const SECONDS = Number(process.env.DR_CHAOS_SECONDS || 30);
const USERS = 12;
const PUBLISHERS = 4;
const RUN = Math.random().toString(36).slice(2, 8);
const PG_FAULTS = process.env.DR_CHAOS_PG === '1';

// Crashes the cluster scripts/test-env started and starts it again with the same options.
async function crashPostgres(downMs) {
  const ctl = path.join(process.env.DR_TEST_PG_BIN, 'pg_ctl');
  const data = process.env.DR_TEST_PG_DATA;
  const run = (args) => execFileSync('runuser', ['-u', 'postgres', '--', ctl, '-D', data, ...args], { stdio: 'pipe' });
  run(['-m', 'immediate', 'stop']);
  await sleep(downMs);
  const opts = fs.readFileSync(path.join(data, 'postmaster.opts'), 'utf8');
  const o = opts.slice(opts.indexOf(' ') + 1).trim().replace(/"/g, '');
  run(['-w', '-l', path.join(data, 'pg.log'), '-o', o.replace(/^-D \S+ ?/, ''), 'start']);
}

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rng = mulberry32(SEED);
const pick = (v) => v[Math.floor(rng() * v.length)];
const between = (lo, hi) => lo + Math.floor(rng() * (hi - lo));

// Round-robin over the backends that accept a connection; cutAll() drops every connection.
async function startBalancer(backends) {
  const port = await freePort();
  const live = new Set();
  let next = 0;
  const server = net.createServer((client) => {
    live.add(client);
    client.on('close', () => live.delete(client));
    client.on('error', () => {});
    client.pause();
    const tryFrom = (k, left) => {
      if (left === 0) {
        client.destroy();
        return;
      }
      const up = net.connect(backends()[k % backends().length].port, '127.0.0.1');
      up.once('error', () => tryFrom(k + 1, left - 1));
      up.once('connect', () => {
        up.removeAllListeners('error');
        up.on('error', () => client.destroy());
        live.add(up);
        up.on('close', () => {
          live.delete(up);
          client.destroy();
        });
        client.on('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    };
    tryFrom(next++, backends().length);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    cutAll() {
      for (const s of live) s.destroy();
    },
    close() {
      this.cutAll();
      return new Promise((r) => server.close(r));
    },
  };
}

describe('faults while notifications flow', { skip }, () => {
  let redis, dir, db, lb;
  const servers = []; // [A, B], replaced on restart
  const clients = [];
  const users = Array.from({ length: USERS }, (_, i) => `chaos-${RUN}-${i}`);
  const env = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-chaos-'));
    redis = new Redis(await freePort(), dir);
    await redis.start();
    db = createDatabase(PG, 'dr_chaos');
    Object.assign(env, {
      DATABASE_URL: db,
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      DR_QUEUE_LEASE_MS: '2000', // a killed instance's queued messages are taken over soon
    });
    for (let i = 0; i < 2; i++) {
      servers.push(await startServer({ env: { ...env, DR_LOG_LEVEL: 'info' }, edit: (y) => y + REDIS_YAML }));
    }
    lb = await startBalancer(() => servers);
  });

  after(async () => {
    for (const c of clients) c.client.close();
    await lb?.close();
    const codes = [];
    for (const s of servers) codes.push([s, await s.stop()]);
    await redis?.stop();
    for (const [s, r] of codes) {
      assert.equal(r.code, 0, `clean exit expected: ${s.log().slice(-3000)}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every notification reaches its user exactly once, with its stored seq', async (t) => {
    t.diagnostic(`DR_CHAOS_SEED=${SEED} DR_CHAOS_SECONDS=${SECONDS}`);
    users.forEach((user, i) => {
      const client = new DataRouterClient({
        url: lb.url,
        getToken: () => userToken(user),
        WebSocket,
        EventSource,
        transports: i % 3 === 2 ? ['sse'] : ['websocket', 'sse'],
        since: 0,
        backoff: { initialMs: 50, maxMs: 1000, factor: 2, jitter: 0.5 },
      });
      const rec = { user, client, events: [], opens: 0, log: [] };
      client.on('*', (ev) => {
        rec.events.push(ev);
        rec.log.push([Date.now(), 'ev', ev.seq]);
      });
      client.on('open', (o) => {
        rec.opens++;
        rec.log.push([Date.now(), 'open', o.transport, client.lastSeq]);
      });
      client.on('close', (c) => rec.log.push([Date.now(), 'close', c?.code]));
      client.on('resync', (f) => rec.log.push([Date.now(), 'resync', f.since, !!f.reset]));
      client.on('error', () => {});
      client.connect();
      clients.push(rec);
    });
    await waitFor(() => clients.every((c) => c.opens > 0), 'every client connected');

    const acked = new Map(users.map((u) => [u, new Set()])); // user -> notification ids
    const pending = []; // {list, direct}: to send (again)
    let seq = 0;
    let faults = 0;
    const timeline = [];
    let failures = 0;
    const until = Date.now() + SECONDS * 1000;

    async function send({ list, direct }) {
      const srv = pick(servers);
      try {
        if (direct) {
          const r = await request(`${srv.url}/api/v1/publish`, 'POST', { notifications: list });
          if (r.status !== 200) throw new Error(`publish API ${r.status}`);
          r.json.notifications.forEach((x, i) => assert.equal(x.notification_id, list[i].notification_id));
        } else {
          await srv.publish(list);
        }
        for (const n of list) acked.get(n.user_id).add(n.notification_id);
        return true;
      } catch {
        failures++;
        return false;
      }
    }

    // PUBLISHERS loops, so that faults land while notifications are being stored
    const publishers = Array.from({ length: PUBLISHERS }, async () => {
      while (Date.now() < until || pending.length) {
        const batch = pending.length
          ? pending.shift()
          : {
              list: Array.from({ length: between(1, 20) }, () => notification(pick(users), seq++)),
              direct: rng() < 0.5,
            };
        if (!(await send(batch))) {
          pending.push(batch);
          await sleep(50);
        }
        await sleep(5);
      }
    });

    const chaos = (async () => {
      while (Date.now() < until) {
        await sleep(between(800, 2000));
        const r = rng();
        faults++;
        const pgFault = PG_FAULTS && r >= 0.8 && r < 0.9;
        timeline.push([Date.now(), r < 0.3 ? 'kill' : r < 0.6 ? 'term' : r < 0.8 ? 'redis' : pgFault ? 'postgres' : 'cut']);
        if (r < 0.6) {
          const i = between(0, servers.length);
          const old = servers[i];
          if (r < 0.3) {
            old.kill('SIGKILL');
          }
          const exit = await old.stop(); // SIGTERM unless killed
          if (r >= 0.3) assert.equal(exit.code, 0, `orderly stop: ${old.log().slice(-2000)}`);
          await sleep(between(100, 800));
          servers[i] = await startServer({
            env: { ...env, DR_LOG_LEVEL: 'info' },
            port: old.port,
            dir: old.dir,
            edit: (y) => y + REDIS_YAML,
          });
        } else if (r < 0.8) {
          await redis.stop();
          await sleep(between(200, 1000));
          await redis.start();
        } else if (pgFault) {
          await crashPostgres(between(200, 1500));
        } else {
          lb.cutAll();
        }
      }
    })();

    await chaos;
    await Promise.all(publishers);
    const total = [...acked.values()].reduce((k, s) => k + s.size, 0);
    const kinds = {};
    for (const [, k] of timeline) kinds[k] = (kinds[k] ?? 0) + 1;
    t.diagnostic(
      `${total} notifications published, ${failures} sends retried, ${faults} faults ` +
        `(${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')})`,
    );
    assert.ok(total > 100, `enough traffic (${total})`);

    const storedSeqs = () =>
      new Map(
        execFileSync(
          'psql',
          [db, '-qAt', '-F', ' ', '-c', 'SELECT notification_id, seq FROM rt_notifications'],
          { encoding: 'utf8', maxBuffer: 64 << 20 },
        )
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .map(([id, s]) => [id, Number(s)]),
      );
    for (const c of clients) {
      const want = acked.get(c.user);
      const missing = () => {
        const have = new Set(c.events.map((e) => e.id));
        return [...want].filter((id) => !have.has(id));
      };
      try {
        await waitFor(() => missing().length === 0, `${c.user}: all ${want.size}`, 60000);
      } catch {
        const st = storedSeqs();
        const seqs = missing().map((id) => st.get(id)).sort((x, y) => x - y);
        const rows = execFileSync(
          'psql',
          [db, '-qAt', '-c', `SELECT seq, created_ms, room FROM rt_notifications WHERE seq IN (${seqs.join(',')})`],
          { encoding: 'utf8' },
        );
        const got = c.events.map((e) => e.seq);
        const logs = path.join(os.tmpdir(), `dr-chaos-${SEED}`);
        fs.mkdirSync(logs, { recursive: true });
        servers.forEach((srv, i) => fs.writeFileSync(path.join(logs, `server${i}.log`), srv.log()));
        fs.writeFileSync(
          path.join(logs, `${c.user}.json`),
          JSON.stringify({ seqs, rows, got, log: c.log, timeline }),
        );
        assert.fail(
          `${c.user}: ${seqs.length} of ${want.size} missing, seqs ${seqs.slice(0, 20).join(',')}; ` +
            `it got ${got.length}, the last ${got.slice(-5).join(',')}; ${c.opens} opens; ` +
            `details in ${logs}`,
        );
      }
    }
    // the store, now that every client has everything: each notification once, with its seq
    const stored = storedSeqs();
    assert.equal(stored.size, total, 'the store holds each published notification once');
    for (const c of clients) {
      const ids = c.events.map((e) => e.id);
      assert.equal(ids.length, new Set(ids).size, `${c.user}: each once`);
      assert.deepEqual(new Set(ids), acked.get(c.user), `${c.user}: its own, nothing else`);
      for (const e of c.events) {
        assert.equal(e.seq, stored.get(e.id), `${c.user}: ${e.id} with its stored seq`);
      }
    }
  });
});
