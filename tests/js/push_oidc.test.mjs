// The Pub/Sub push endpoint with Google OIDC verification: tokens signed by jose with a key
// published in a JWKS file, as Google signs push requests. Only a valid token for the configured
// audience, issuer and service account gets the message stored (204).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { makeKeys, request, startServer, waitFor } from './realtime-lib.mjs';

const AUD = 'https://router.test/pubsub/push';
const SA = 'push@proj.iam.gserviceaccount.com';

function pushBody(id, seq) {
  return {
    message: {
      data: Buffer.from(JSON.stringify({ n: seq })).toString('base64'),
      attributes: { seq: String(seq), type: 'test' },
      messageId: id,
      publishTime: new Date().toISOString(),
    },
    subscription: 'projects/proj/subscriptions/dr-push',
  };
}

async function googleToken(key, kid, claims = {}, opts = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: SA, email_verified: true, ...claims })
    .setProtectedHeader({ alg: opts.alg || 'RS256', kid })
    .setIssuer(opts.iss ?? 'https://accounts.google.com')
    .setAudience(opts.aud ?? AUD)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.exp ?? 3600))
    .sign(key);
}

test('push: OIDC tokens are verified before a message is stored', async () => {
  const keys = await makeKeys();
  const srv = await startServer({
    edit: (yaml) => {
      const dir = yaml.match(/data_dir: (.*)/)[1];
      const jwksPath = path.join(JSON.parse(dir), 'google-jwks.json');
      fs.writeFileSync(jwksPath, JSON.stringify(keys.jwks));
      return [
        'mode: pubsub',
        yaml.match(/http: .*/)[0],
        `data_dir: ${dir}`,
        'workers: 2',
        'topics: {test-p: {type: test}}',
        'pubsub:',
        '  project: proj',
        '  subscriptions: [{name: dr-push, topic: test-p}]',
        `  push: {enabled: true, audience: "${AUD}", service_account: "${SA}", jwks: ${JSON.stringify(jwksPath)}}`,
        'processors: {test: {}}',
        'routes:',
        '  - {name: t, match: {topic: test-p}, processors: [test]}',
      ].join('\n');
    },
  });
  try {
    const push = (body, token) =>
      request(`${srv.url}/pubsub/push`, 'POST', body, token ? { authorization: `Bearer ${token}` } : {});
    const rsa = keys.rsa.privateKey;

    // refused: no token, wrong audience, wrong issuer, wrong account, unverified email,
    // expired, unknown key, HS256 with a guessable secret
    assert.equal((await push(pushBody('m0', 0))).status, 401);
    assert.equal((await push(pushBody('m0', 0), await googleToken(rsa, 'rsa-1', {}, { aud: 'https://other' }))).status, 401);
    assert.equal((await push(pushBody('m0', 0), await googleToken(rsa, 'rsa-1', {}, { iss: 'https://evil.test' }))).status, 403);
    assert.equal((await push(pushBody('m0', 0), await googleToken(rsa, 'rsa-1', { email: 'x@evil.test' }))).status, 403);
    assert.equal((await push(pushBody('m0', 0), await googleToken(rsa, 'rsa-1', { email_verified: false }))).status, 403);
    assert.equal((await push(pushBody('m0', 0), await googleToken(rsa, 'rsa-1', {}, { exp: -3600 }))).status, 401);
    assert.equal((await push(pushBody('m0', 0), await googleToken(rsa, 'nope'))).status, 401);
    const hs = await new SignJWT({ email: SA, email_verified: true })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .setIssuer('https://accounts.google.com').setAudience(AUD).setExpirationTime('1h')
      .sign(new TextEncoder().encode('0123456789abcdef0123456789abcdef'));
    assert.equal((await push(pushBody('m0', 0), hs)).status, 401);
    const refused = await srv.request('GET', '/metrics');
    assert.ok(refused.status === 200);

    // accepted: three messages, one pushed twice (Pub/Sub redelivers): stored once, run once
    const good = await googleToken(rsa, 'rsa-1');
    for (const [id, seq] of [['m1', 1], ['m2', 2], ['m3', 3], ['m2', 2]]) {
      const r = await push(pushBody(id, seq), good);
      assert.equal(r.status, 204, r.text);
    }
    const record = path.join(srv.dir, 'test-processed.jsonl');
    const seqs = () =>
      fs.existsSync(record)
        ? fs.readFileSync(record, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).seq)
        : [];
    await waitFor(() => seqs().length >= 3, 'pushed messages processed');
    assert.deepEqual(seqs().sort(), ['1', '2', '3']);
    assert.ok(!seqs().includes('0'), 'a refused push must not be processed');
    assert.ok(!srv.log().includes(good), 'the token must not be logged');
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0);
  }
});

test('push without OIDC: held like the publish API; a message breaking the limits is dead-lettered', async () => {
  const key = 'pk-' + crypto.randomBytes(12).toString('hex');
  const sha = crypto.createHash('sha256').update(key).digest('hex');
  const adminKey = 'ak-' + crypto.randomBytes(12).toString('hex');
  const adminSha = crypto.createHash('sha256').update(adminKey).digest('hex');
  const srv = await startServer({
    edit: (yaml) =>
      [
        'mode: pubsub',
        yaml.match(/http: .*/)[0],
        yaml.match(/data_dir: .*/)[0],
        'topics: {test-p: {type: test}}',
        'pubsub:',
        '  project: proj',
        '  subscriptions: [{name: dr-push, topic: test-p}]',
        '  push: {enabled: true}',
        'processors: {test: {}}',
        'routes:',
        '  - {name: t, match: {topic: test-p}, processors: [test]}',
        'api_keys:',
        `  - {name: proxy, role: service, sha256: ${sha}}`,
        `  - {name: ops, role: admin, sha256: ${adminSha}}`,
      ].join('\n'),
  });
  try {
    const push = (headers, body = pushBody('k1', 1)) =>
      request(`${srv.url}/pubsub/push`, 'POST', body, headers);
    assert.equal((await push({})).status, 401, 'no key: refused, even from loopback');
    assert.equal((await push({ 'x-api-key': 'nope' })).status, 401);
    const ok = await push({ 'x-api-key': key });
    assert.equal(ok.status, 204, ok.text);

    // A message that breaks Pub/Sub's limits never gets better: refused, Pub/Sub would deliver
    // it again until its retention ran out. It is dead-lettered with its reason and acknowledged.
    const bad = {
      'bad-b64': { ...pushBody('bad-b64', 2).message, data: '!!not base64!!' },
      'bad-attr': { ...pushBody('bad-attr', 3).message, attributes: { k: 5 } },
    };
    for (const [id, message] of Object.entries(bad)) {
      const r = await push({ 'x-api-key': key }, { message, subscription: 'projects/proj/subscriptions/dr-push' });
      assert.equal(r.status, 204, `${id}: ${r.text}`);
    }
    const dl = await request(`${srv.url}/admin/dlq?topic=test-p`, 'GET', undefined, { 'x-api-key': adminKey });
    assert.equal(dl.status, 200, dl.text);
    const dead = JSON.parse(dl.text).dead_letters;
    for (const id of Object.keys(bad)) {
      const d = dead.find((x) => x.message_id === id);
      assert.ok(d, `${id} dead-lettered: ${dl.text}`);
      assert.equal(d.reason, 'invalid_message');
      assert.ok(d.error.length > 0);
    }
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0);
  }
});
