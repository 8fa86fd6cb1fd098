// JWKS from a URL: keys fetched at start, refetched when a token names an unknown kid (key
// rotation), at a bounded rate so a flood of forged kids cannot become a flood of fetches.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { request, sign, startServer, waitFor } from './realtime-lib.mjs';

async function rsaKey(kid) {
  const k = await generateKeyPair('RS256', { modulusLength: 2048 });
  return { ...k, jwk: { ...(await exportJWK(k.publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

test('JWKS URL: fetched at start, refetched on an unknown kid, bounded', async () => {
  const a = await rsaKey('key-a');
  const b = await rsaKey('key-b');
  let served = [a.jwk];
  let fetches = 0;
  // the fetch at start is answered only when the test says so
  let release;
  const released = new Promise((r) => (release = r));
  const jwksServer = http.createServer(async (req, res) => {
    fetches++;
    if (fetches === 1) await released;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served }));
  });
  await new Promise((r) => jwksServer.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${jwksServer.address().port}/certs`;
  const srv = await startServer({ env: { DR_JWT_SECRET: '', DR_JWKS: url } });
  try {
    const inbox = (token) =>
      request(`${srv.url}/api/v1/notifications/unread-count`, 'GET', undefined, {
        authorization: `Bearer ${token}`,
      });
    const tokA = await sign({ sub: 'alice', org: 'acme' }, { alg: 'RS256', key: a.privateKey, kid: 'key-a' });
    // a token that comes while the fetch at start is still out: refused, and it must not use
    // up the refetch that the rotation below needs
    await waitFor(async () => fetches === 1, 'the fetch at start');
    const early = await inbox(tokA);
    assert.equal(early.status, 401);
    assert.match(early.text, /unknown_kid/);
    release();
    await waitFor(async () => (await inbox(tokA)).status === 200, 'the JWKS fetched at start');
    assert.equal(fetches, 1);

    // the issuer rotates to key-b: the first token with it triggers a refetch
    served = [a.jwk, b.jwk];
    const tokB = await sign({ sub: 'bob', org: 'acme' }, { alg: 'RS256', key: b.privateKey, kid: 'key-b' });
    const first = await inbox(tokB);
    assert.equal(first.status, 401);
    assert.match(first.text, /unknown_kid/);
    await waitFor(async () => (await inbox(tokB)).status === 200, 'key-b after the refetch');
    const afterRotation = fetches;
    assert.equal(afterRotation, 2);

    // forged kids: refused, and within the refetch interval they cause no further fetches
    for (let i = 0; i < 20; i++) {
      const forged = await sign({ sub: 'mallory' }, { alg: 'RS256', key: b.privateKey, kid: `forged-${i}` });
      assert.equal((await inbox(forged)).status, 401);
    }
    assert.equal(fetches, afterRotation, 'unknown kids must not trigger a fetch each');
  } finally {
    const r = await srv.stop();
    jwksServer.close();
    assert.equal(r.code, 0);
  }
});
