// Helpers for the real-time tests: run data-router with a small config, sign tokens with jose
// (never with data-router's own code), and talk to /ws and /events with independent clients.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import WebSocket from 'ws';

export const SECRET = 'realtime-test-secret-0123456789abcdef';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'data-router-test';
const BIN = process.env.DR_BIN || 'build/data-router';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(pred, what, timeoutMs = 20000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// RSA and EC keys published in a JWKS file the server loads (DR_JWKS).
export async function makeKeys() {
  const rsa = await generateKeyPair('RS256', { modulusLength: 2048 });
  const ec = await generateKeyPair('ES256');
  const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
  const ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
  return { rsa, ec, jwks: { keys: [rsaJwk, ecJwk] } };
}

const enc = new TextEncoder();

// claims: payload; opts: {alg, key, kid, exp (seconds from now, null = none), iss, aud, nbf}
export async function sign(claims, opts = {}) {
  const alg = opts.alg || 'HS256';
  const header = { alg, typ: 'JWT' };
  if (opts.kid) header.kid = opts.kid;
  let jwt = new SignJWT(claims).setProtectedHeader(header).setIssuedAt();
  const now = Math.floor(Date.now() / 1000);
  if (opts.exp !== null) jwt = jwt.setExpirationTime(now + (opts.exp ?? 3600));
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(now + opts.nbf);
  jwt = jwt.setIssuer(opts.iss ?? ISSUER).setAudience(opts.aud ?? AUDIENCE);
  return jwt.sign(opts.key || enc.encode(opts.secret || SECRET));
}

export const userToken = (sub, extra = {}, opts = {}) => sign({ sub, org: 'acme', ...extra }, opts);

function yamlFor(port, dataDir, realtime) {
  return [
    'mode: local',
    `http: {host: 127.0.0.1, port: ${port}}`,
    `data_dir: ${JSON.stringify(dataDir)}`,
    'workers: 2',
    'topics:',
    '  client-notifications: {type: client_notification}',
    'processors:',
    '  realtime: {}',
    '  log: {}',
    'routes:',
    '  - name: notify',
    '    match: {topic: [client-notifications]}',
    '    processors: [realtime]',
    '  - name: default',
    '    default: true',
    '    processors: [log]',
    `realtime: ${JSON.stringify(realtime)}`,
    '',
  ].join('\n');
}

// Starts data-router; realtime is the realtime: section; env adds to the environment. port and
// dir (optional) restart a server on the port and data directory of an earlier one. edit
// (optional) rewrites the generated YAML text before it is written.
export async function startServer({
  realtime = {},
  env = {},
  jwks = null,
  port: p0,
  dir: d0,
  edit = null,
} = {}) {
  const port = p0 ?? (await freePort());
  const dir = d0 ?? fs.mkdtempSync(path.join(os.tmpdir(), 'dr-rt-'));
  const cfg = path.join(dir, 'config.yaml');
  const yaml = yamlFor(port, dir, realtime);
  fs.writeFileSync(cfg, edit ? edit(yaml) : yaml);
  const e = {
    ...process.env,
    PORT: String(port),
    DR_DATA_DIR: dir,
    DR_LOG_LEVEL: 'warn',
    DR_JWT_SECRET: SECRET,
    DR_JWT_ISSUER: ISSUER,
    DR_JWT_AUDIENCE: AUDIENCE,
    ...env,
  };
  if (jwks) {
    const p = path.join(dir, 'jwks.json');
    fs.writeFileSync(p, JSON.stringify(jwks));
    e.DR_JWKS = p;
  }
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'a');
  const proc = spawn(BIN, ['serve', '--config', cfg], { env: e, stdio: ['ignore', log, log] });
  let exited = null;
  let stopping = null;
  const exit = new Promise((r) => proc.on('exit', (code, sig) => r((exited = { code, sig }))));
  const srv = {
    port,
    dir,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    log: () => fs.readFileSync(logPath, 'utf8'),
    stop() {
      // idempotent: a second call waits for the same exit
      stopping ??= (async () => {
        if (!exited) proc.kill('SIGTERM');
        const r = await exit;
        fs.closeSync(log);
        return r;
      })();
      return stopping;
    },
    kill: (sig) => proc.kill(sig), // then stop() to wait for the exit
    exited: () => exited,
    request: (method, p, body, headers) => request(srv.url + p, method, body, headers),
    async publish(notifications) {
      const messages = notifications.map((n) => ({
        data: Buffer.from(typeof n === 'string' ? n : JSON.stringify(n)).toString('base64'),
      }));
      const r = await request(
        `${srv.url}/v1/projects/local/topics/client-notifications:publish`,
        'POST',
        { messages },
      );
      if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${r.text}`);
      return r.json.messageIds;
    },
    async metric(name, labels = '') {
      const r = await request(`${srv.url}/metrics`, 'GET');
      const want = `${name}{${labels}} `;
      const line = r.text.split('\n').find((l) => l.startsWith(want));
      return line ? Number(line.slice(want.length)) : 0;
    },
  };
  await waitFor(async () => {
    if (exited) throw new Error(`server exited ${JSON.stringify(exited)}: ${srv.log()}`);
    try {
      return (await request(`${srv.url}/healthz`, 'GET')).status === 200;
    } catch {
      return false;
    }
  }, 'the server to start');
  return srv;
}

export function request(url, method, body, headers = {}) {
  return new Promise((resolve, reject) => {
    // a Buffer is sent as it is: JSON written by hand
    const data =
      body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = http.request(
      url,
      {
        method,
        headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// A WebSocket client that records every frame and the close.
export class Client {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      this.frames.push(isBinary ? { binary: data } : JSON.parse(data.toString()));
      this.wake();
    });
    ws.on('error', () => {});
  }

  static open(url, options = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, ...options });
      const c = new Client(ws);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (req, res) => {
        const chunks = [];
        res.on('data', (x) => chunks.push(x));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const err = new Error(`HTTP ${res.statusCode}`);
          err.status = res.statusCode;
          err.body = text;
          reject(err);
        });
      });
      ws.once('error', reject);
    });
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  // Waits for a frame matching pred (a type string or a function) at or after index from.
  async waitFrame(pred, timeoutMs = 15000) {
    const test = typeof pred === 'string' ? (f) => f.type === pred : pred;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(test);
      if (f) return f;
      if (this.closeInfo) {
        throw new Error(`closed (${this.closeInfo.code} ${this.closeInfo.reason}) before a frame`);
      }
      if (Date.now() > until) throw new Error('timed out waiting for a frame');
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  events() {
    return this.frames.filter((f) => f.type === 'event');
  }

  async waitEvents(n, timeoutMs = 20000) {
    await waitFor(() => this.events().length >= n || this.closeInfo, `${n} events`, timeoutMs);
    return this.events();
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}

export function notification(user, i, extra = {}) {
  return {
    notification_id: `n-${user}-${i}-${Math.random().toString(36).slice(2)}`,
    user_id: user,
    org_id: 'acme',
    room: `user:${user}`,
    notification_type: 'system.test',
    title: `t${i}`,
    message: `m${i}`,
    data: { i },
    ...extra,
  };
}

// Stores notification n straight into the rt_notifications table of PostgreSQL database db,
// as an instance that died between its commit and its PUBLISH leaves it: stored, never sent over
// the bus. Returns its seq.
export function storeWithoutPublish(db, n) {
  const body = JSON.stringify({
    notification_id: n.notification_id,
    user_id: n.user_id,
    org_id: n.org_id,
    room: n.room,
    notification_type: n.notification_type,
    title: n.title,
    message: n.message,
    data: n.data,
    timestamp: '2026-11-27T12:00:00.000Z',
  });
  return Number(
    execFileSync('psql', [db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-v', `body=${body}`], {
      encoding: 'utf8',
      input:
        'INSERT INTO rt_notifications (notification_id, user_id, org_id, room, type,' +
        " body_json, created_ms) VALUES (:'body'::json->>'notification_id', :'body'::json->>" +
        "'user_id', 'acme', :'body'::json->>'room', 'system.test', :'body', 0) RETURNING seq;\n",
    }).trim(),
  );
}

// A TCP proxy in front of a server: cut() drops every connection through it and refuses new
// ones until restore(). refuse(pred) answers 503 to connections whose first bytes match pred
// (e.g. WebSocket upgrades). requests holds the first chunk of every connection (as text).
export async function startProxy(targetPort) {
  const port = await freePort();
  const live = new Set();
  const waiting = new Set();
  const state = { cut: false, refuse: null, requests: [] };
  const server = net.createServer((client) => {
    if (state.cut) {
      client.destroy();
      return;
    }
    waiting.add(client);
    client.once('data', (first) => {
      waiting.delete(client);
      if (state.cut) {
        client.destroy();
        return;
      }
      const head = first.toString('latin1');
      state.requests.push(head);
      if (state.refuse && state.refuse(head)) {
        client.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      const upstream = net.connect(targetPort, '127.0.0.1');
      const pair = { client, upstream };
      live.add(pair);
      const done = () => {
        live.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      upstream.on('error', done).on('close', done);
      client.on('error', done).on('close', done);
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    client.on('error', () => {});
    client.on('close', () => waiting.delete(client));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests: state.requests,
    connections: () => live.size,
    refuse(pred) {
      state.refuse = pred;
    },
    cut() {
      state.cut = true;
      for (const { client, upstream } of live) {
        client.destroy();
        upstream.destroy();
      }
      live.clear();
      for (const c of waiting) c.destroy();
      waiting.clear();
    },
    restore() {
      state.cut = false;
    },
    close() {
      this.cut();
      return new Promise((r) => server.close(r));
    },
  };
}

// Why a test that needs PostgreSQL (DR_TEST_PG_URL) and redis-server cannot run, or false.
export function needPgAndRedis() {
  if (!process.env.DR_TEST_PG_URL) return 'DR_TEST_PG_URL not set';
  return haveRedis() ? false : 'redis-server not installed';
}

export function haveRedis() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A redis-server of the test's own (the harness's is shared with other tests), so that it
// can be stopped, frozen and restarted.
export class Redis {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.proc = null;
  }

  ping() {
    try {
      return execFileSync('redis-cli', ['-p', String(this.port), 'ping'], {
        encoding: 'utf8',
        timeout: 2000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() === 'PONG';
    } catch {
      return false;
    }
  }

  async start() {
    const log = fs.openSync(path.join(this.dir, 'redis.log'), 'a');
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--dir', this.dir],
      { stdio: ['ignore', log, log] },
    );
    this.exited = new Promise((r) => this.proc.on('exit', r));
    fs.closeSync(log);
    await waitFor(() => this.ping(), 'redis-server to answer PING');
  }

  async stop() {
    if (!this.proc) return;
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGKILL');
    await this.exited;
    this.proc = null;
  }
}

// A fresh database on the PostgreSQL server of pgUrl, named prefix_<random>: the instances of
// other tests must not share the queue table with a test's own. Returns its URL.
export function createDatabase(pgUrl, prefix) {
  const name = `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
  execFileSync('psql', [pgUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`], {
    stdio: 'pipe',
  });
  const url = new URL(pgUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

// The redis: section of instances that must notice an outage, or a notification that never
// came over the bus, within a second or so.
export const REDIS_YAML = [
  'redis:',
  '  connect_timeout: 1s',
  '  command_timeout: 500ms',
  '  ping_interval: 200ms',
  '  backoff_max: 1s',
  '  audit_interval: 200ms',
  '',
].join('\n');
// The generated config's route to the realtime processor (a test may take it out).
export const NOTIFY_ROUTE = '  - name: notify\n    match: {topic: [client-notifications]}\n    processors: [realtime]\n';

// Two instances sharing a new PostgreSQL database and a Redis of their own, both with the bus
// up. Only B processes publications: A has no route to the realtime processor, so what A's
// clients get came over Redis. yamlA and yamlB edit each one's YAML (REDIS_YAML added already),
// envB adds to B's environment. startA(options) starts A again (e.g. on its port and directory).
// stop() stops both and Redis and throws unless both exited 0 (checkB false: B is the test's).
export async function startPair(name, { yamlA = (y) => y, yamlB = (y) => y, envB = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const redis = new Redis(await freePort(), dir);
  await redis.start();
  const db = createDatabase(process.env.DR_TEST_PG_URL, name.replace(/-/g, '_'));
  const env = { DATABASE_URL: db, REDIS_URL: `redis://127.0.0.1:${redis.port}` };
  const editA = (y) => {
    if (!y.includes(NOTIFY_ROUTE)) throw new Error('the generated config has no notify route');
    return yamlA(y.replace(NOTIFY_ROUTE, '') + REDIS_YAML);
  };
  const pair = {
    dir,
    redis,
    db,
    env,
    startA: (options = {}) => startServer({ env, edit: editA, ...options }),
    async stop({ checkB = true } = {}) {
      const results = [];
      for (const [name, s] of [['A', pair.a], ['B', pair.b]]) if (s) results.push([name, s, await s.stop()]);
      await redis.stop();
      for (const [name, s, r] of results) {
        if ((name === 'A' || checkB) && r.code !== 0) {
          throw new Error(`${name}: clean exit expected, got ${JSON.stringify(r)}: ${s.log().slice(-3000)}`);
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  pair.a = await pair.startA();
  pair.b = await startServer({ env: { ...env, ...envB }, edit: (y) => yamlB(y + REDIS_YAML) });
  for (const s of [pair.a, pair.b]) {
    await waitFor(async () => (await s.metric('dr_realtime_bus_state')) === 2, 'the bus up');
  }
  return pair;
}
