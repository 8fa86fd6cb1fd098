// Pulls and acks over gRPC with TLS, the way data-router talks to the real Pub/Sub service
// (which cannot run here): a fake google.pubsub.v1.Subscriber on Node's HTTP/2 server checks the
// documented request shape (path, content-type, te, a self-signed service-account JWT for
// https://pubsub.googleapis.com/, the protobuf request) and answers with protobuf and gRPC
// trailers, once with UNAVAILABLE first; an emit of the processed message goes out through
// Publisher/Publish. The router must only trust the certificate it was given (DR_CA_FILE).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { jwtVerify } from 'jose';
import { freePort, startServer, waitFor } from './realtime-lib.mjs';

const SA = 'router@proj.iam.gserviceaccount.com';
const SUB = 'projects/proj/subscriptions/dr-sub';

// ---- protobuf, written and read here ----
function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}
const field = (num, wt, payload) => Buffer.concat([varint(num * 8 + wt), payload]);
const bytes = (num, b) => field(num, 2, Buffer.concat([varint(b.length), Buffer.from(b)]));
const uint = (num, v) => field(num, 0, varint(v));
function frame(msg) {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}
function fields(b) {
  const out = [];
  let i = 0;
  const rv = () => {
    let x = 0;
    let s = 1;
    for (;;) {
      const c = b[i++];
      x += (c & 0x7f) * s;
      s *= 128;
      if (!(c & 0x80)) return x;
    }
  };
  while (i < b.length) {
    const key = rv();
    const num = Math.floor(key / 8);
    if (key % 8 === 0) out.push([num, rv()]);
    else if (key % 8 === 2) {
      const n = rv();
      out.push([num, b.subarray(i, i + n)]);
      i += n;
    } else throw new Error(`wire type ${key % 8}`);
  }
  return out;
}
function unframe(body) {
  assert.equal(body[0], 0, 'uncompressed');
  assert.equal(body.readUInt32BE(1), body.length - 5, 'one whole frame');
  return fields(body.subarray(5));
}

function received(ackId, messageId, data, attrs) {
  const msg = Buffer.concat([
    bytes(1, Buffer.from(data)),
    ...Object.entries(attrs).map(([k, v]) => bytes(2, Buffer.concat([bytes(1, k), bytes(2, v)]))),
    bytes(3, messageId),
    bytes(4, Buffer.concat([uint(1, Math.floor(Date.now() / 1000)), uint(2, 5000000)])),
  ]);
  return bytes(1, Buffer.concat([bytes(1, ackId), bytes(2, msg)]));
}

function tlsFiles(dir) {
  const key = path.join(dir, 'tls.key');
  const cert = path.join(dir, 'tls.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key, cert };
}

async function fakePubsub(tls, publicKey) {
  const seen = { pulls: [], acks: [], modacks: [], publishes: [], bad: [], unavailableSent: 0, other: [],
    calls: [] };
  const srv = http2.createSecureServer({ key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) });
  srv.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', async () => {
      const p = headers[':path'];
      const body = Buffer.concat(chunks);
      seen.calls.push(p.split('/').pop());
      try {
        assert.equal(headers[':method'], 'POST');
        assert.equal(headers['content-type'], 'application/grpc');
        assert.equal(headers.te, 'trailers');
        const auth = headers.authorization || '';
        assert.ok(auth.startsWith('Bearer '), 'a bearer token');
        const { payload, protectedHeader } = await jwtVerify(auth.slice(7), publicKey, {
          audience: 'https://pubsub.googleapis.com/',
          issuer: SA,
          subject: SA,
          algorithms: ['RS256'],
        });
        assert.equal(protectedHeader.kid, 'key-1');
        assert.ok(payload.exp - payload.iat <= 3600);
      } catch (e) {
        seen.bad.push(`${p}: ${e.message}`);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16',
          'grpc-message': 'bad%20request' }, { endStream: true });
        return;
      }
      const answer = (msg) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(msg));
      };
      if (p === '/google.pubsub.v1.Subscriber/Pull') {
        const f = unframe(body);
        seen.pulls.push({
          subscription: f.find(([n]) => n === 1)?.[1].toString(),
          max: f.find(([n]) => n === 3)?.[1],
        });
        if (seen.unavailableSent === 0) {
          // a trailers-only error: the router must back off and pull again
          seen.unavailableSent++;
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14',
            'grpc-message': 'try%20again' }, { endStream: true });
        } else if (seen.pulls.length === 2) {
          // the test processor emits a copy to test-out: published over gRPC before the ack
          answer(received('ack-1', 'm-1', JSON.stringify({ n: 1 }),
            { seq: 'g1', type: 'test', test_emit: 'test-out' }));
        } else {
          setTimeout(() => { if (!stream.closed) answer(Buffer.alloc(0)); }, 300); // nothing new
        }
      } else if (p === '/google.pubsub.v1.Publisher/Publish') {
        const f = unframe(body);
        const msgs = f.filter(([n]) => n === 2).map(([, m]) => {
          const mf = fields(m);
          const attrs = {};
          for (const [n, e] of mf) {
            if (n === 2) {
              const ef = fields(e);
              attrs[ef.find(([k]) => k === 1)[1].toString()] = ef.find(([k]) => k === 2)[1].toString();
            }
          }
          return { data: mf.find(([n]) => n === 1)?.[1].toString(), attrs };
        });
        seen.publishes.push({ topic: f.find(([n]) => n === 1)?.[1].toString(), msgs });
        answer(Buffer.concat(msgs.map((_, i) => bytes(1, `pub-${seen.publishes.length}-${i}`))));
      } else if (p === '/google.pubsub.v1.Subscriber/ModifyAckDeadline') {
        const f = unframe(body);
        assert.equal(f.find(([n]) => n === 1)?.[1].toString(), SUB);
        seen.modacks.push({
          ids: f.filter(([n]) => n === 4).map(([, v]) => v.toString()),
          deadline: f.find(([n]) => n === 3)?.[1] ?? 0, // proto3 leaves a zero out
        });
        answer(Buffer.alloc(0));
      } else if (p === '/google.pubsub.v1.Subscriber/Acknowledge') {
        const f = unframe(body);
        assert.equal(f.find(([n]) => n === 1)?.[1].toString(), SUB);
        for (const [n, v] of f) if (n === 2) seen.acks.push(v.toString());
        answer(Buffer.alloc(0));
      } else {
        seen.other.push(p);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' },
          { endStream: true });
      }
    });
  });
  const port = await freePort();
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return { srv, port, seen };
}

function routerYaml(fakePort) {
  return (yaml) => {
    const dir = yaml.match(/data_dir: (.*)/)[1];
    return [
      'mode: pubsub',
      yaml.match(/http: .*/)[0],
      `data_dir: ${dir}`,
      'workers: 2',
      'topics: {test-a: {type: test}}',
      'pubsub:',
      '  project: proj',
      `  endpoint: https://127.0.0.1:${fakePort}`,
      '  subscriptions: [{name: dr-sub, topic: test-a}]',
      '  pulls_in_flight: 2',
      'processors: {test: {}}',
      'routes:',
      '  - {name: t, match: {topic: test-a}, processors: [test]}',
    ].join('\n');
  };
}

test('pubsub over gRPC with TLS: request shape, auth, trailers, retry after UNAVAILABLE, publish', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-grpc-tls-'));
  const tls = tlsFiles(dir);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saPath = path.join(dir, 'sa.json');
  fs.writeFileSync(saPath, JSON.stringify({
    type: 'service_account',
    project_id: 'proj',
    private_key_id: 'key-1',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: SA,
  }));
  const fake = await fakePubsub(tls, publicKey);
  const env = { PUBSUB_EMULATOR_HOST: '', GOOGLE_APPLICATION_CREDENTIALS: saPath };

  // 1. without the CA file the fake's certificate is not trusted: nothing reaches it
  const untrusting = await startServer({ env, edit: routerYaml(fake.port) });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fake.seen.pulls.length, 0, 'a request got through an untrusted certificate');
    assert.match(untrusting.log(), /pull failed/);
  } finally {
    await untrusting.stop();
  }

  // 2. with it: pull (UNAVAILABLE first, then a message), process, acknowledge
  const srv = await startServer({ env: { ...env, DR_CA_FILE: tls.cert }, edit: routerYaml(fake.port) });
  try {
    await waitFor(() => fake.seen.acks.includes('ack-1'), 'the message to be acknowledged');
    await waitFor(async () => (await srv.metric('dr_messages_processed_total',
      'topic="test-a",processor="test",outcome="ok"')) === 1, 'the message to be processed');
    assert.deepEqual(fake.seen.bad, []);
    assert.deepEqual(fake.seen.other, []);
    assert.equal(fake.seen.unavailableSent, 1);
    assert.ok(fake.seen.pulls.length >= 2);
    for (const p of fake.seen.pulls) {
      assert.equal(p.subscription, SUB);
      assert.ok(p.max >= 1 && p.max <= 1000);
    }
    assert.match(srv.log(), /UNAVAILABLE: try again/);
    assert.deepEqual([...new Set(fake.seen.acks)], ['ack-1']);
    // on receipt, before the ack, its deadline was set to the configured one (30 s by default)
    assert.deepEqual(fake.seen.modacks[0], { ids: ['ack-1'], deadline: 30 });
    assert.ok(fake.seen.calls.indexOf('ModifyAckDeadline') < fake.seen.calls.indexOf('Acknowledge'),
      'deadline set before the ack');
    // the emit went out through Publisher/Publish with its data and attributes
    assert.equal(fake.seen.publishes.length, 1);
    const pub = fake.seen.publishes[0];
    assert.equal(pub.topic, 'projects/proj/topics/test-out');
    assert.equal(pub.msgs.length, 1);
    assert.deepEqual(JSON.parse(pub.msgs[0].data), { n: 1 });
    assert.equal(pub.msgs[0].attrs.test_parent, 'm-1');
    assert.ok(fake.seen.calls.indexOf('Publish') < fake.seen.calls.indexOf('Acknowledge'), 'emit before ack');
  } finally {
    const r = await srv.stop();
    fake.srv.close();
    assert.equal(r.code, 0);
  }
});
