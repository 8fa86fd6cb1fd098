// The admin API's view of real-time connections (GET/DELETE /admin/connections) against real
// WebSocket and SSE clients: totals, rooms, users, paging and filters, the admin key it needs,
// and a connection closed by an administrator (4010).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import { Client, startServer, userToken, waitFor } from './realtime-lib.mjs';

const ADMIN_KEY = 'adm-' + 'a'.repeat(40);
const SERVICE_KEY = 'svc-' + 's'.repeat(40);
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');

let srv;

before(async () => {
  srv = await startServer({
    edit: (yaml) =>
      yaml +
      [
        'api_keys:',
        `  - {name: ops, role: admin, sha256: ${sha(ADMIN_KEY)}}`,
        `  - {name: backend, role: service, sha256: ${sha(SERVICE_KEY)}}`,
        '',
      ].join('\n'),
  });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
});

const admin = { 'X-API-Key': ADMIN_KEY };
const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });

function sseOpen(url) {
  return new Promise((resolve, reject) => {
    const es = new EventSource(url);
    const frames = [];
    const s = { es, frames };
    es.onmessage = (e) => {
      frames.push(JSON.parse(e.data));
      if (frames.length === 1) resolve(s);
    };
    es.onerror = (e) => {
      if (!frames.length) reject(new Error(`SSE error ${e.status}`));
      es.close();
    };
  });
}

async function listing(query = '') {
  const r = await srv.request('GET', `/admin/connections${query}`, undefined, admin);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

describe('GET /admin/connections', () => {
  let alice, pending, bob;

  before(async () => {
    alice = await Client.open(
      srv.wsUrl,
      bearer(await userToken('alice', { rooms: ['shipment:1Z1', 'shipment:3Z3'] })),
    );
    await alice.waitFrame('welcome');
    alice.send({ type: 'unsubscribe', room: 'shipment:3Z3' });
    await alice.waitFrame('unsubscribed');
    pending = await Client.open(srv.wsUrl); // no token yet: waits for its auth message
    bob = await sseOpen(
      `${srv.url}/events?access_token=${await userToken('bob', { org: 'globex' })}`,
    );
    assert.equal(bob.frames[0].type, 'welcome');
  });

  after(async () => {
    bob.es.close();
    pending.ws.terminate();
    alice.ws.terminate();
  });

  test('needs an admin key', async () => {
    let r = await srv.request('GET', '/admin/connections');
    assert.equal(r.status, 401);
    assert.equal(r.json.error.status, 'UNAUTHENTICATED');
    r = await srv.request('GET', '/admin/connections', undefined, { 'X-API-Key': SERVICE_KEY });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.status, 'PERMISSION_DENIED');
    r = await srv.request('DELETE', '/admin/connections/1', undefined, {
      Authorization: `Bearer ${SERVICE_KEY}`,
    });
    assert.equal(r.status, 403);
    r = await srv.request('GET', '/admin/connections', undefined, {
      Authorization: `Bearer ${ADMIN_KEY}`,
    });
    assert.equal(r.status, 200);
  });

  test('totals and each connection: transport, user, org, rooms, state', async () => {
    const page = await listing();
    assert.equal(page.totals.connections, 3);
    assert.deepEqual(page.totals.by_transport, { ws: 2, sse: 1 });
    assert.equal(page.totals.waiting_for_auth, 1);
    assert.equal(page.totals.users, 2);
    assert.equal(page.totals.max_connections, 10000);
    assert.equal(page.count, 3);
    const [a, p, b] = page.connections;
    assert.ok(a.id < p.id && p.id < b.id, 'in id order');
    assert.equal(a.transport, 'ws');
    assert.equal(a.state, 'open');
    assert.equal(a.authenticated, true);
    assert.equal(a.user, 'alice');
    assert.equal(a.org, 'acme');
    assert.deepEqual(a.rooms.sort(), ['org:acme', 'shipment:1Z1', 'user:alice']);
    assert.equal(a.id, alice.frames.find((f) => f.type === 'welcome').connection_id);
    assert.equal(p.transport, 'ws');
    assert.equal(p.state, 'waiting_for_auth');
    assert.equal(p.authenticated, false);
    assert.equal(p.user, null);
    assert.deepEqual(p.rooms, []);
    assert.equal(b.transport, 'sse');
    assert.equal(b.user, 'bob');
    assert.equal(b.org, 'globex');
    assert.deepEqual(b.rooms.sort(), ['org:globex', 'user:bob']);
    for (const c of page.connections) {
      for (const k of ['connected_at', 'last_activity', 'last_received', 'last_sent']) {
        assert.ok(!Number.isNaN(Date.parse(c[k])), `${k}: ${c[k]}`);
      }
      assert.equal(typeof c.queue_bytes, 'number');
      assert.equal(typeof c.queue_frames, 'number');
    }
    assert.ok(Date.parse(a.connected_at) <= Date.parse(b.connected_at));
  });

  test('pages, filters and one connection', async () => {
    const first = await listing('?limit=2');
    assert.equal(first.count, 2);
    assert.equal(first.next_after, first.connections[1].id);
    const rest = await listing(`?limit=2&after=${first.next_after}`);
    assert.equal(rest.count, 1);
    assert.equal(rest.next_after, undefined);
    assert.equal(rest.connections[0].user, 'bob');

    const mine = await listing('?user=alice');
    assert.deepEqual(mine.connections.map((c) => c.user), ['alice']);
    assert.equal(mine.totals.connections, 3, 'totals are the whole instance');
    assert.equal((await listing('?transport=sse')).connections[0].user, 'bob');
    assert.equal((await listing('?user=nobody')).count, 0);

    const id = mine.connections[0].id;
    const one = await srv.request('GET', `/admin/connections/${id}`, undefined, admin);
    assert.equal(one.status, 200);
    assert.equal(one.json.user, 'alice');

    for (const q of ['?limit=0', '?limit=1001', '?after=x', '?transport=longpoll', '?user=alice%00x', '?transport=ws%00']) {
      const r = await srv.request('GET', `/admin/connections${q}`, undefined, admin);
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    }
    for (const p of ['/999999', '/x', '/1/x', '/']) {
      const r = await srv.request('GET', `/admin/connections${p}`, undefined, admin);
      assert.equal(r.status, 404, p);
    }
    assert.equal((await srv.request('POST', '/admin/connections', {}, admin)).status, 405);
  });

  test('DELETE closes a connection with 4010; the client is told why', async () => {
    const page = await listing();
    const a = page.connections.find((c) => c.user === 'alice');
    const b = page.connections.find((c) => c.user === 'bob');
    let r = await srv.request('DELETE', `/admin/connections/${a.id}`, undefined, admin);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { closed: a.id, code: 4010 });
    const closed = await alice.closed;
    assert.equal(closed.code, 4010);
    assert.match(closed.reason, /administrator/);

    r = await srv.request('DELETE', `/admin/connections/${b.id}`, undefined, admin);
    assert.equal(r.status, 200, r.text);
    const last = await waitFor(
      () => bob.frames.find((f) => f.type === 'close'),
      'the SSE close record',
    );
    assert.equal(last.code, 4010);

    await waitFor(async () => (await listing()).totals.connections === 1, 'both gone');
    r = await srv.request('DELETE', `/admin/connections/${a.id}`, undefined, admin);
    assert.equal(r.status, 404);
  });
});

describe('without API keys', () => {
  test('loopback clients are served, as on every /admin route', async () => {
    const open = await startServer();
    try {
      const c = await Client.open(open.wsUrl, bearer(await userToken('solo')));
      await c.waitFrame('welcome');
      const r = await open.request('GET', '/admin/connections');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.connections[0].user, 'solo');
      await c.close();
    } finally {
      assert.equal((await open.stop()).code, 0);
    }
  });
});
