// Real-time authentication: every way to present a token, the attack set refused (401 before
// the upgrade, 4001 after it), forbidden rooms (4003), the per-user connection limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import { UnsecuredJWT, exportSPKI } from 'jose';
import {
  AUDIENCE,
  Client,
  ISSUER,
  makeKeys,
  notification,
  sign,
  startServer,
  userToken,
} from './realtime-lib.mjs';

let srv;
let keys;

before(async () => {
  keys = await makeKeys();
  srv = await startServer({
    jwks: keys.jwks,
    realtime: { max_connections_per_user: 3, auth_timeout: '400ms', jwt_leeway: 0 },
  });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
});

const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });

async function expectRefused(url, options, status = 401) {
  await assert.rejects(Client.open(url, options), (err) => {
    assert.equal(err.status, status, err.message);
    const body = JSON.parse(err.body);
    assert.equal(body.error.code, status);
    return true;
  });
}

function sseOpen(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const es = new EventSource(url, { headers });
    const frames = [];
    es.onmessage = (e) => {
      frames.push(JSON.parse(e.data));
      if (frames[0].type === 'welcome') resolve({ es, frames });
    };
    es.onerror = (e) => {
      es.close();
      reject(Object.assign(new Error(`SSE error ${e.status}`), { status: e.status }));
    };
  });
}

describe('authentication methods', () => {
  test('Authorization: Bearer with HS256', async () => {
    const c = await Client.open(srv.wsUrl, bearer(await userToken('a1')));
    const w = await c.waitFrame('welcome');
    assert.equal(w.user, 'a1');
    assert.deepEqual(w.rooms, ['user:a1', 'org:acme']);
    await c.close();
  });

  // RFC 9110 5.5: the whitespace after a header's value is not part of it, so not of the token
  test('Authorization: Bearer with a space or a tab after the token', async () => {
    const t = await userToken('a5');
    const wrong = await sign({ sub: 'a5' }, { secret: 'x'.repeat(40) });
    const inbox = (auth) =>
      srv.request('GET', '/api/v1/notifications/unread-count', undefined, { Authorization: auth });
    const refusedAs = (await inbox(`Bearer ${wrong}`)).json.error.message;
    assert.match(refusedAs, /^invalid token: /);
    for (const ws of [' ', '\t', ' \t ']) {
      const what = JSON.stringify(ws);
      const c = await Client.open(srv.wsUrl, bearer(t + ws));
      assert.equal((await c.waitFrame('welcome')).user, 'a5', what);
      await c.close();
      let r = await inbox(`Bearer ${t}${ws}`);
      assert.equal(r.status, 200, `${what}: ${r.text}`);
      assert.equal(r.json.unread, 0);
      // a wrong token is still refused, for what it is
      await expectRefused(srv.wsUrl, bearer(wrong + ws));
      r = await inbox(`Bearer ${wrong}${ws}`);
      assert.equal(r.status, 401, what);
      assert.equal(r.json.error.message, refusedAs, what);
    }
  });

  test('access_token query parameter', async () => {
    const c = await Client.open(`${srv.wsUrl}?access_token=${await userToken('a2')}`);
    assert.equal((await c.waitFrame('welcome')).user, 'a2');
    await c.close();
  });

  test('first auth message', async () => {
    const c = await Client.open(srv.wsUrl);
    c.send({ type: 'auth', token: await userToken('a3') });
    assert.equal((await c.waitFrame('welcome')).user, 'a3');
    await c.close();
  });

  test('RS256 and ES256 from the JWKS', async () => {
    const rs = await sign({ sub: 'rs' }, { alg: 'RS256', key: keys.rsa.privateKey, kid: 'rsa-1' });
    const es = await sign({ sub: 'es' }, { alg: 'ES256', key: keys.ec.privateKey, kid: 'ec-1' });
    for (const [tok, sub] of [
      [rs, 'rs'],
      [es, 'es'],
    ]) {
      const c = await Client.open(srv.wsUrl, bearer(tok));
      assert.equal((await c.waitFrame('welcome')).user, sub);
      await c.close();
    }
  });

  test('SSE with Bearer header and with access_token', async () => {
    const t = await userToken('s1');
    const a = await sseOpen(`${srv.url}/events`, { Authorization: `Bearer ${t}` });
    assert.equal(a.frames[0].user, 's1');
    a.es.close();
    const b = await sseOpen(`${srv.url}/events?access_token=${t}`);
    assert.equal(b.frames[0].user, 's1');
    b.es.close();
  });
});

describe('the attack set is refused', () => {
  const cases = {};
  before(async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = await userToken('victim');
    const pem = await exportSPKI(keys.rsa.publicKey);
    cases.alg_none = new UnsecuredJWT({ sub: 'victim', exp: now + 600, iss: ISSUER, aud: AUDIENCE })
      .encode();
    cases.hs_rs_confusion = await sign(
      { sub: 'victim' },
      { alg: 'HS256', key: new TextEncoder().encode(pem), kid: 'rsa-1' },
    );
    cases.hs_with_public_key = await sign(
      { sub: 'victim' },
      { alg: 'HS256', key: new TextEncoder().encode(pem) },
    );
    cases.expired = await userToken('victim', {}, { exp: -120 });
    cases.not_yet_valid = await userToken('victim', {}, { nbf: 600 });
    cases.wrong_audience = await userToken('victim', {}, { aud: 'someone-else' });
    cases.wrong_issuer = await userToken('victim', {}, { iss: 'https://evil.test' });
    cases.bad_signature = good.slice(0, -3) + (good.endsWith('AAA') ? 'BBB' : 'AAA');
    cases.unknown_kid = await sign(
      { sub: 'victim' },
      { alg: 'RS256', key: keys.rsa.privateKey, kid: 'not-there' },
    );
    cases.wrong_secret = await sign({ sub: 'victim' }, { secret: 'x'.repeat(40) });
    cases.oversized = await userToken('victim', { pad: 'p'.repeat(9000) });
    cases.garbage = 'not.a.token';
    cases.no_sub = await sign({ org: 'acme' });
    // cut at the NUL, this would be victim's token
    cases.nul_in_sub = await userToken('victim\u0000x');
  });

  test('401 with a JSON body before the WebSocket upgrade', async () => {
    for (const [name, tok] of Object.entries(cases)) {
      await expectRefused(srv.wsUrl, bearer(tok)).catch((e) => {
        throw new Error(`${name}: ${e.message}`);
      });
    }
    assert.ok((await srv.metric('dr_realtime_refused_total', 'reason="expired"')) >= 1);
  });

  test('401 for the access_token parameter and for SSE', async () => {
    for (const name of ['alg_none', 'expired', 'hs_rs_confusion', 'bad_signature']) {
      await expectRefused(`${srv.wsUrl}?access_token=${cases[name]}`);
      const r = await srv.request('GET', '/events', undefined, {
        Authorization: `Bearer ${cases[name]}`,
      });
      assert.equal(r.status, 401, name);
      assert.equal(r.json.error.code, 401);
      assert.match(r.headers['www-authenticate'], /^Bearer/);
    }
    const none = await srv.request('GET', '/events');
    assert.equal(none.status, 401);
  });

  test('an oversized token: 401 too_large wherever it is, a head over the limit: JSON', async () => {
    const eightK = await userToken('victim', { pad: 'p'.repeat(6000) });
    assert.ok(eightK.length > 8192 && eightK.length < 9000, String(eightK.length));
    for (const tok of [eightK, cases.oversized]) {
      for (const [path, headers] of [
        [`?access_token=${tok}`, {}],
        ['', { Authorization: `Bearer ${tok}` }],
      ]) {
        await assert.rejects(Client.open(`${srv.wsUrl}${path}`, { headers }), (err) => {
          assert.equal(err.status, 401, `${tok.length} ${path ? 'query' : 'header'}`);
          assert.deepEqual(JSON.parse(err.body).error, {
            code: 401,
            message: 'invalid token: too_large',
            status: 'UNAUTHENTICATED',
          });
          return true;
        });
        const r = await srv.request('GET', `/events${path}`, undefined, headers);
        assert.equal(r.status, 401, `SSE ${tok.length} ${path ? 'query' : 'header'}`);
        assert.equal(r.json.error.message, 'invalid token: too_large');
        assert.match(r.headers['www-authenticate'], /^Bearer/);
      }
    }
    // beyond the server's limit on a request's line and headers: refused, still in JSON
    const huge = 'x'.repeat(40 * 1024);
    await assert.rejects(Client.open(`${srv.wsUrl}?access_token=${huge}`), (err) => {
      assert.ok(err.status >= 400 && err.status < 500, String(err.status));
      assert.equal(JSON.parse(err.body).error.code, err.status);
      return true;
    });
    const r = await srv.request('GET', `/events?access_token=${huge}`);
    assert.ok(r.status >= 400 && r.status < 500, String(r.status));
    assert.equal(r.json.error.code, r.status);
  });

  test('a sub or org that cannot form a room name: 401 before the upgrade, 4001 after', async () => {
    const bad = [
      ['invalid_sub', await userToken('v'.repeat(129))],
      ['invalid_sub', await userToken('vic tim')],
      ['invalid_sub', await userToken('vïctim')],
      ['invalid_sub', await userToken('victim\t')],
      ['invalid_org', await userToken('victim', { org: 'ac me' })],
      ['invalid_org', await userToken('victim', { org: 'o'.repeat(129) })],
      ['invalid_org', await userToken('victim', { org: '' })],
      ['invalid_org', await sign({ sub: 'victim', org_id: 'acmé' })],
    ];
    for (const [why, tok] of bad) {
      await assert.rejects(Client.open(srv.wsUrl, bearer(tok)), (err) => {
        assert.equal(err.status, 401, why);
        assert.equal(JSON.parse(err.body).error.message, `invalid token: ${why}`);
        return true;
      });
      const r = await srv.request('GET', `/events?access_token=${tok}`);
      assert.equal(r.status, 401, why);
      assert.equal(r.json.error.message, `invalid token: ${why}`);
      const c = await Client.open(srv.wsUrl);
      c.send({ type: 'auth', token: tok });
      const { code, reason } = await c.closed;
      assert.equal(code, 4001, why);
      assert.equal(String(reason), `unauthenticated: ${why}`);
      assert.equal(c.events().length, 0);
    }
    // the longest names that fit are accepted
    const ok = await Client.open(
      srv.wsUrl,
      bearer(await userToken('u'.repeat(128), { org: 'o'.repeat(128) })),
    );
    assert.deepEqual((await ok.waitFrame('welcome')).rooms, [
      `user:${'u'.repeat(128)}`,
      `org:${'o'.repeat(128)}`,
    ]);
    await ok.close();
  });

  test('close 4001 after the upgrade (auth message)', async () => {
    for (const name of ['alg_none', 'expired', 'hs_rs_confusion', 'unknown_kid', 'oversized']) {
      const c = await Client.open(srv.wsUrl);
      c.send({ type: 'auth', token: cases[name] });
      const { code } = await c.closed;
      assert.equal(code, 4001, name);
      assert.equal(c.events().length, 0);
    }
  });

  test('an auth message with a bad since: invalid_since, then 4001', async () => {
    const tok = await userToken('resumer');
    for (const since of [-1, 'x', 1.5, 1e300, null]) {
      const c = await Client.open(srv.wsUrl);
      c.send({ type: 'auth', token: tok, since });
      const welcomed = c.waitFrame('welcome').then(() => ({ code: 'welcome' }), () => c.closed);
      assert.equal((await Promise.race([c.closed, welcomed])).code, 4001, String(since));
      c.ws.terminate();
      assert.deepEqual(c.frames.map((f) => f.type + ':' + f.code), ['error:invalid_since']);
    }
    const ok = await Client.open(srv.wsUrl);
    ok.send({ type: 'auth', token: tok, since: 0 });
    assert.equal((await ok.waitFrame('welcome')).since, 0);
    await ok.close();
  });

  test('no auth message within the deadline: 4001; other messages first: 4001', async () => {
    const c = await Client.open(srv.wsUrl);
    assert.equal((await c.closed).code, 4001);
    const d = await Client.open(srv.wsUrl);
    d.send({ type: 'subscribe', room: 'user:victim' });
    assert.equal((await d.closed).code, 4001);
  });
});

describe('rooms and limits', () => {
  test('context rooms: forbidden closes 4003; the rooms claim and admins may join', async () => {
    const c = await Client.open(srv.wsUrl, bearer(await userToken('r1')));
    await c.waitFrame('welcome');
    c.send({ type: 'subscribe', room: 'user:someone-else' });
    const e = await c.waitFrame('error');
    assert.equal(e.code, 'forbidden');
    assert.equal(e.room, 'user:someone-else', 'the error names the room it refuses');
    assert.equal((await c.closed).code, 4003);

    const m = await Client.open(srv.wsUrl, bearer(await userToken('r2', { rooms: ['meeting:p1'] })));
    await m.waitFrame('welcome');
    m.send({ type: 'subscribe', room: 'shipment:1Z999' }); // no shipments table: denied
    assert.equal((await m.waitFrame('error')).room, 'shipment:1Z999'); // after the store's answer
    assert.equal((await m.closed).code, 4003);

    const k = await Client.open(srv.wsUrl, bearer(await userToken('r3', { rooms: ['meeting:p1'] })));
    const w = await k.waitFrame('welcome');
    assert.ok(w.rooms.includes('meeting:p1'), 'rooms claim joined at connect');
    await k.close();

    const a = await Client.open(srv.wsUrl, bearer(await userToken('boss', { role: 'admin' })));
    await a.waitFrame('welcome');
    a.send({ type: 'subscribe', room: 'shipment:ANY123' });
    assert.equal((await a.waitFrame('subscribed')).room, 'shipment:ANY123');
    a.send({ type: 'subscribe', room: 'bogus:1' });
    assert.equal((await a.waitFrame('error')).code, 'invalid_room');
    await a.close();
  });

  test('a refreshed token keeps the connection while it grants every joined room', async () => {
    const claims = { rooms: ['meeting:p9'] };
    const c = await Client.open(srv.wsUrl, bearer(await userToken('rf1', claims)));
    const w = await c.waitFrame('welcome');
    assert.deepEqual(w.rooms, ['user:rf1', 'org:acme', 'meeting:p9']);
    c.send({ type: 'auth', token: await userToken('rf1', claims, { exp: 7200 }) });
    await srv.publish([notification('rf1', 1, { room: 'org:acme' })]);
    assert.equal((await c.waitFrame('event')).room, 'org:acme', 'still served after the refresh');
    // another org: org:acme is no longer granted
    c.send({ type: 'auth', token: await userToken('rf1', { ...claims, org: 'other' }) });
    assert.equal((await c.closed).code, 4003);

    // the rooms claim without a joined room
    const d = await Client.open(srv.wsUrl, bearer(await userToken('rf2', claims)));
    await d.waitFrame('welcome');
    d.send({ type: 'auth', token: await userToken('rf2') });
    assert.equal((await d.closed).code, 4003);

    // an admin's room, refreshed without the role
    const a = await Client.open(srv.wsUrl, bearer(await userToken('rf3', { role: 'admin' })));
    await a.waitFrame('welcome');
    a.send({ type: 'subscribe', room: 'shipment:RF3' });
    await a.waitFrame('subscribed');
    a.send({ type: 'auth', token: await userToken('rf3') });
    const closed = await a.closed;
    assert.equal(closed.code, 4003);
    assert.match(closed.reason, /no longer grants/);

    // another user
    const e = await Client.open(srv.wsUrl, bearer(await userToken('rf4')));
    await e.waitFrame('welcome');
    e.send({ type: 'auth', token: await userToken('rf5') });
    assert.equal((await e.closed).code, 4003);
  });

  test('SSE rooms parameter: checked before the stream starts', async () => {
    const h = { Authorization: `Bearer ${await userToken('sse-rooms', { rooms: ['meeting:p1'] })}` };
    const cases = [
      ['user:someone-else', 403, /not allowed to join user:someone-else$/],
      ['meeting:p2', 403, /not allowed to join meeting:p2$/],
      ['lobby', 400, /not a room name/],
      ['meeting:a%20b', 400, /not a room name/],
      ['meeting:p1%00,meeting:p2', 400, /%00/],
      [Array.from({ length: 33 }, (_, i) => `meeting:m${i}`).join(','), 400, /at most 32/],
    ];
    for (const [rooms, status, message] of cases) {
      const r = await srv.request('GET', `/events?rooms=${rooms}`, undefined, h);
      assert.equal(r.status, status, rooms);
      assert.equal(r.json.error.code, status, rooms);
      assert.match(r.json.error.message, message, rooms);
    }
    const es = await sseOpen(`${srv.url}/events?rooms=meeting:p1`, h);
    assert.ok(es.frames[0].rooms.includes('meeting:p1'));
    es.es.close();
  });

  test('rooms claim over max_rooms: the first ones joined, the rest reported', async () => {
    const rooms = Array.from({ length: 40 }, (_, i) => `meeting:claim-${i}`);
    const c = await Client.open(srv.wsUrl, bearer(await userToken('claimer', { rooms })));
    const welcome = await c.waitFrame('welcome');
    assert.equal(welcome.rooms.length, 32);
    assert.deepEqual(welcome.rooms.slice(2), rooms.slice(0, 30));
    const err = await c.waitFrame((f) => f.type === 'error', 3000);
    assert.equal(err.code, 'too_many_rooms');
    assert.match(err.message, /^10 room/);
    await c.close();
  });

  test('a connection flood over the per-user limit is refused; others are served', async () => {
    const t = await userToken('flood');
    const open = [];
    for (let i = 0; i < 3; i++) {
      const c = await Client.open(srv.wsUrl, bearer(t));
      await c.waitFrame('welcome');
      open.push(c);
    }
    await expectRefused(srv.wsUrl, bearer(t), 429);
    const r = await srv.request('GET', '/events', undefined, { Authorization: `Bearer ${t}` });
    assert.equal(r.status, 429);
    const late = await Client.open(srv.wsUrl);
    late.send({ type: 'auth', token: t });
    assert.equal((await late.closed).code, 4029);

    const other = await Client.open(srv.wsUrl, bearer(await userToken('calm')));
    await other.waitFrame('welcome');
    await srv.publish([notification('calm', 1)]);
    const [ev] = await other.waitEvents(1);
    assert.equal(ev.room, 'user:calm');

    await open[0].close();
    const again = await Client.open(srv.wsUrl, bearer(t));
    await again.waitFrame('welcome');
    for (const c of [...open.slice(1), again, other]) await c.close();
  });
});
