// web/data-router-client.js under Node: the `ws` package's WebSocket and the `eventsource`
// package's EventSource are injected (Node 20 has neither). Against a real data-router: a
// connection cut through a TCP proxy, a server restart, the SSE fallback when /ws is refused,
// token refresh on 4001, a seq kept from before the store was emptied. Against a scripted fake
// WebSocket: the duplicate filter and the `since` values sent on resume, a resync with reset.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import EventSource from 'eventsource';
import WebSocket from 'ws';
import { notification, sign, startProxy, startServer, userToken, waitFor } from './realtime-lib.mjs';

const SRC = process.env.DR_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
const { DataRouterClient, backoffDelay } = await import(
  pathToFileURL(path.join(SRC, 'web/data-router-client.js')).href
);

const cleanups = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

function makeClient(url, extra = {}) {
  const client = new DataRouterClient({
    url,
    getToken: () => userToken('alice'),
    WebSocket,
    EventSource,
    backoff: { initialMs: 50, maxMs: 500 },
    ...extra,
  });
  const rec = { events: [], opens: [], closes: [], errors: [] };
  client.on('*', (ev) => rec.events.push(ev));
  client.on('open', (o) => rec.opens.push(o.transport));
  client.on('close', (c) => rec.closes.push(c));
  client.on('error', (e) => rec.errors.push(e));
  cleanups.push(() => client.close());
  return { client, rec };
}

// Publishes n notifications for alice and returns their ids in order.
async function publish(srv, n, tag) {
  const ns = Array.from({ length: n }, (_, i) => notification('alice', `${tag}-${i}`));
  await srv.publish(ns);
  return ns.map((x) => x.notification_id);
}

const hasAll = (events, ids) => ids.every((id) => events.some((e) => e.id === id));

// Every expected id exactly once and nothing else. (Notifications of one publish batch may be
// processed in any order, so their seq order is not the publish order.)
function assertExactlyOnce(events, ids) {
  const got = events.map((e) => e.id);
  assert.deepEqual([...got].sort(), [...ids].sort(), 'each notification delivered once');
  assert.equal(new Set(events.map((e) => e.seq)).size, events.length, 'no seq twice');
}

// Waits for ids, then for one more notification published after them: anything doubled would
// have arrived by then.
async function settle(srv, rec, ids) {
  await waitFor(() => hasAll(rec.events, ids), `${ids.length} notifications`, 30000);
  const marker = await publish(srv, 1, 'marker');
  await waitFor(() => hasAll(rec.events, marker), 'the marker', 30000);
  return [...ids, ...marker];
}

describe('client library against data-router', () => {
  test('a cut connection reconnects and resumes: every notification exactly once', async () => {
    const srv = await startServer();
    cleanups.push(() => srv.stop());
    const proxy = await startProxy(srv.port);
    cleanups.push(() => proxy.close());
    const { client, rec } = makeClient(proxy.url);
    client.connect();
    await waitFor(() => rec.opens.length === 1, 'the first open');
    assert.equal(rec.opens[0], 'websocket');

    const before = await publish(srv, 3, 'before');
    await waitFor(() => hasAll(rec.events, before), 'three live notifications');

    proxy.cut();
    await waitFor(() => client.state === 'reconnecting', 'the client to notice the cut');
    const during = await publish(srv, 4, 'during');
    proxy.restore();
    await waitFor(() => rec.opens.length >= 2, 'the reconnect', 30000);
    assertExactlyOnce(rec.events, await settle(srv, rec, [...before, ...during]));
    assert.ok(rec.closes.length >= 1, 'a close was reported');
    assert.equal(client.lastSeq, rec.events.at(-1).seq);
  });

  test('a server restart on the same port and data directory loses nothing', async () => {
    let srv = await startServer();
    const { port, dir } = srv;
    const { client, rec } = makeClient(srv.url);
    client.connect();
    await waitFor(() => rec.opens.length === 1, 'the first open');
    const first = await publish(srv, 2, 'first');
    await waitFor(() => hasAll(rec.events, first), 'two notifications');

    await srv.stop();
    await waitFor(() => client.state === 'reconnecting', 'the client to notice the stop');
    srv = await startServer({ port, dir });
    cleanups.push(() => srv.stop());
    const second = await publish(srv, 3, 'second');
    await waitFor(() => rec.opens.length >= 2, 'the reconnect', 30000);
    assertExactlyOnce(rec.events, await settle(srv, rec, [...first, ...second]));
  });

  test('falls back to SSE when /ws is refused and resumes with Last-Event-ID', async () => {
    const srv = await startServer();
    cleanups.push(() => srv.stop());
    const proxy = await startProxy(srv.port);
    cleanups.push(() => proxy.close());
    proxy.refuse((head) => head.startsWith('GET /ws'));
    const { client, rec } = makeClient(proxy.url);
    client.connect();
    await waitFor(() => rec.opens.length === 1, 'the first open');
    assert.equal(rec.opens[0], 'sse');
    assert.ok(proxy.requests.some((r) => r.startsWith('GET /ws')), 'WebSocket was tried first');

    const before = await publish(srv, 2, 'sse-before');
    await waitFor(() => hasAll(rec.events, before), 'two notifications over SSE');
    const lastBeforeCut = client.lastSeq;
    const nrequests = proxy.requests.length;

    proxy.cut();
    await waitFor(() => client.state === 'reconnecting', 'the client to notice the cut');
    const during = await publish(srv, 3, 'sse-during');
    proxy.restore();
    await waitFor(() => rec.opens.length >= 2, 'the reconnect', 30000);
    assertExactlyOnce(rec.events, await settle(srv, rec, [...before, ...during]));
    assert.deepEqual([...new Set(rec.opens)], ['sse'], 'WebSocket never opened');
    const resumed = proxy.requests
      .slice(nrequests)
      .filter((r) => r.startsWith('GET /events'))
      .at(-1);
    assert.ok(resumed, 'an SSE request after the cut');
    assert.match(resumed, new RegExp(`\\r\\nlast-event-id: ${lastBeforeCut}\\r\\n`, 'i'));
  });

  test('a token that expires while connected is refreshed (close 4001)', async () => {
    const srv = await startServer({ realtime: { jwt_leeway: 0 } });
    cleanups.push(() => srv.stop());
    const calls = [];
    const { client, rec } = makeClient(srv.url, {
      getToken: ({ refresh }) => {
        calls.push(refresh);
        // the first token lives two seconds, later ones an hour
        return sign({ sub: 'alice', org: 'acme' }, { exp: calls.length === 1 ? 2 : 3600 });
      },
    });
    client.connect();
    await waitFor(() => rec.opens.length === 1, 'the first open');
    await waitFor(() => rec.closes.some((c) => c.code === 4001), 'close 4001 on expiry', 30000);
    await waitFor(() => rec.opens.length === 2, 'the reconnect with a fresh token', 30000);
    assert.equal(calls.length, 2);
    assert.equal(calls[1], true, 'getToken was asked to refresh');
    const ids = await publish(srv, 1, 'fresh');
    await waitFor(() => rec.events.length === 1, 'a notification on the new connection');
    assert.equal(rec.events[0].id, ids[0]);
  });

  for (const transport of ['websocket', 'sse']) {
    test(`${transport}: a seq from before the store was emptied resumes from the store's head`, async () => {
      const srv = await startServer(); // a new, empty store
      cleanups.push(() => srv.stop());
      const resyncs = [];
      const { client, rec } = makeClient(srv.url, { since: 5000, transports: [transport] });
      client.on('resync', (f) => resyncs.push(f));
      client.connect();
      await waitFor(() => resyncs.length === 1, 'a resync with reset');
      assert.equal(rec.opens.length, 1);
      assert.equal(rec.opens[0], transport);
      assert.deepEqual(resyncs[0], { type: 'resync', since: 0, reset: true });
      assert.equal(client.lastSeq, 0);
      const ids = await publish(srv, 3, `reset-${transport}`);
      assertExactlyOnce(rec.events, await settle(srv, rec, ids));
      assert.equal(client.lastSeq, Math.max(...rec.events.map((e) => e.seq)));
      assert.equal(rec.opens.length, 1, 'no reconnect');
    });
  }
});

// ---- a scripted WebSocket: the client's bookkeeping without a server ----

class FakeWebSocket {
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.readyState = 3;
  }

  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  serverClose(code) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

// A client on the scripted WebSocket only (its sockets listed afresh), resuming from 0 unless
// extra says otherwise.
function scripted(extra = {}) {
  FakeWebSocket.all = [];
  return makeClient('http://127.0.0.1:1', {
    WebSocket: FakeWebSocket,
    EventSource: undefined,
    getToken: () => 'tok',
    since: 0,
    ...extra,
  });
}

const ev = (seq, room = 'user:alice') => ({
  type: 'event',
  room,
  seq,
  id: `n-${seq}`,
  event: 'shipment.updated',
  data: { seq },
});

describe('client library bookkeeping', () => {
  test('overlapping resumes are delivered once; since follows what was delivered', async () => {
    const byType = [];
    const { client, rec } = scripted({ getToken: () => 'h.eyJzdWIiOiJhbGljZSJ9.s' });
    client.on('shipment.updated', (e) => byType.push(e.seq));
    client.subscribe('shipment:1Z9');
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth on the first socket');
    const a = FakeWebSocket.all[0];
    assert.deepEqual(a.sent[0], { type: 'auth', token: 'h.eyJzdWIiOiJhbGljZSJ9.s', since: 0 });
    a.deliver({ type: 'welcome', rooms: ['user:alice'], heartbeat_ms: 25000 });
    assert.deepEqual(a.sent[1], { type: 'subscribe', room: 'shipment:1Z9' });
    a.deliver({ type: 'subscribed', room: 'shipment:1Z9', seq: 0 });
    for (const s of [1, 2, 3]) a.deliver(ev(s));
    a.deliver(ev(5, 'shipment:1Z9'));
    a.deliver(ev(3)); // a redelivery on the same connection
    a.serverClose(4008);

    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth on the second socket');
    const b = FakeWebSocket.all[1];
    assert.equal(b.sent[0].since, 5, 'resume from the newest delivered seq');
    b.deliver({ type: 'welcome', rooms: ['user:alice'], heartbeat_ms: 25000 });
    assert.deepEqual(b.sent[1], { type: 'subscribe', room: 'shipment:1Z9', since: 5 });
    for (const s of [2, 3, 4, 5, 6]) b.deliver(ev(s)); // overlap with what was delivered
    b.deliver(ev(5, 'shipment:1Z9'));

    assert.deepEqual(rec.events.map((e) => e.seq), [1, 2, 3, 5, 4, 6]);
    assert.deepEqual(byType, [1, 2, 3, 5, 4, 6]);
    assert.equal(rec.opens.length, 2);
    assert.equal(rec.closes[0].code, 4008);
  });

  test('resync: reconnects at once from the named seq; what it has stays filtered', async () => {
    const { client, rec } = scripted();
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    const a = FakeWebSocket.all[0];
    a.deliver({ type: 'welcome', rooms: ['user:alice'] });
    for (const s of [1, 2, 4, 5]) a.deliver(ev(s)); // 3 went missing between instances
    a.deliver({ type: 'resync', since: 2 });
    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth after the resync');
    const b = FakeWebSocket.all[1];
    assert.equal(b.sent[0].since, 2, 'resume from the seq the server named');
    b.deliver({ type: 'welcome', rooms: ['user:alice'] });
    for (const s of [3, 4, 5, 6]) b.deliver(ev(s));
    assert.deepEqual(rec.events.map((e) => e.seq), [1, 2, 4, 5, 3, 6]);
    client.close?.();
  });

  test('resume points: a lost resync frame does not move the client past a missing seq', async () => {
    const { client, rec } = scripted();
    client.subscribe('shipment:1Z9');
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    const a = FakeWebSocket.all[0];
    a.deliver({ type: 'welcome', rooms: ['user:alice'] });
    a.deliver({ type: 'subscribed', room: 'shipment:1Z9', seq: 0 });
    a.deliver(ev(1));
    // 2 is missing on the server's side: the events after it say to resume from 1
    a.deliver({ ...ev(3), resume: 1 });
    a.deliver({ ...ev(4, 'shipment:1Z9'), resume: 1 });
    a.serverClose(1006); // its resync, had one come, is gone with the connection

    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth on the second socket');
    const b = FakeWebSocket.all[1];
    assert.equal(b.sent[0].since, 1, 'resume from the resume point, not from 4');
    b.deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.deepEqual(b.sent[1], { type: 'subscribe', room: 'shipment:1Z9', since: 1 });
    for (const s of [2, 3]) b.deliver(ev(s)); // 3 again: filtered
    b.deliver(ev(4, 'shipment:1Z9'));
    b.deliver({ type: 'resume', seq: 4 }); // nothing is missing up to 4 any more
    b.serverClose(1006);

    await waitFor(() => FakeWebSocket.all[2]?.sent.length === 1, 'auth on the third socket');
    const c = FakeWebSocket.all[2];
    assert.equal(c.sent[0].since, 4, 'a resume frame moves the point up');
    c.deliver({ type: 'welcome', rooms: ['user:alice'] });
    c.deliver({ ...ev(5), resume: 4 });
    c.deliver(ev(3)); // an older statement does not take the point back
    assert.deepEqual(rec.events.map((e) => e.seq), [1, 3, 4, 2, 5]);
    assert.equal(client.lastSeq, 5);
    client.close?.();
  });

  test('resync with reset: seqs from before the connection are forgotten, no reconnect', async () => {
    const resyncs = [];
    const { client, rec } = scripted();
    client.on('resync', (f) => resyncs.push(f));
    client.subscribe('shipment:1Z9');
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    const a = FakeWebSocket.all[0];
    a.deliver({ type: 'welcome', rooms: ['user:alice'] });
    a.deliver({ type: 'subscribed', room: 'shipment:1Z9', seq: 0 });
    for (const s of [100, 101]) a.deliver(ev(s));
    a.deliver(ev(102, 'shipment:1Z9'));
    a.serverClose(1001);

    // the store was emptied meanwhile: its newest seq is 3
    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth on the second socket');
    const b = FakeWebSocket.all[1];
    assert.equal(b.sent[0].since, 102);
    b.deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.deepEqual(b.sent[1], { type: 'subscribe', room: 'shipment:1Z9', since: 102 });
    b.deliver({ type: 'resync', since: 3, reset: true }); // for the rooms of the auth message
    b.deliver(ev(4));
    b.deliver(ev(100)); // a new notification, not the 100 delivered before
    b.deliver(ev(4)); // still a duplicate on this connection
    b.deliver({ type: 'resync', since: 101, reset: true }); // for the subscribe
    b.deliver(ev(102, 'shipment:1Z9'));
    b.deliver({ type: 'subscribed', room: 'shipment:1Z9', seq: 102 });
    assert.deepEqual(rec.events.map((e) => e.seq), [100, 101, 102, 4, 100, 102]);
    assert.equal(resyncs.length, 2);
    assert.equal(client.lastSeq, 102);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(FakeWebSocket.all.length, 2, 'no reconnect');

    b.serverClose(4008);
    await waitFor(() => FakeWebSocket.all[2]?.sent.length === 1, 'auth on the third socket');
    const c = FakeWebSocket.all[2];
    assert.equal(c.sent[0].since, 102, 'resume from what this store delivered');
    c.deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.deepEqual(c.sent[1], { type: 'subscribe', room: 'shipment:1Z9', since: 102 });
    for (const s of [100, 102, 103]) c.deliver(ev(s));
    assert.deepEqual(rec.events.map((e) => e.seq), [100, 101, 102, 4, 100, 102, 103]);
  });

  test('a refused room is dropped and not asked for again', async () => {
    const { client, rec } = scripted({ since: null });
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    const a = FakeWebSocket.all[0];
    a.deliver({ type: 'welcome', rooms: ['user:alice'] });
    client.subscribe('meeting:secret');
    assert.deepEqual(a.sent.at(-1), { type: 'subscribe', room: 'meeting:secret' });
    a.deliver({ type: 'error', code: 'forbidden', message: 'not allowed to join this room' });
    a.serverClose(4003);
    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'the reconnect');
    FakeWebSocket.all[1].deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.equal(FakeWebSocket.all[1].sent.length, 1, 'no subscribe for the refused room');
    assert.deepEqual(client.subscriptions, []);
    assert.ok(rec.errors.some((e) => e.code === 'room_refused' && e.rooms[0] === 'meeting:secret'));
  });

  test('a refused room named by the error frame is the only one dropped', async () => {
    const { client, rec } = scripted({ rooms: ['shipment:MINE', 'shipment:NEW'] });
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    const a = FakeWebSocket.all[0];
    a.deliver({ type: 'welcome', rooms: ['user:alice'] });
    a.deliver({ type: 'subscribed', room: 'shipment:MINE', seq: 0 });
    a.deliver(ev(7, 'shipment:MINE'));
    a.serverClose(1006);

    // on the next connection MINE is resumed and NEW still unanswered when a third room is refused
    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth on the second socket');
    const b = FakeWebSocket.all[1];
    b.deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.deepEqual(b.sent[1], { type: 'subscribe', room: 'shipment:MINE', since: 7 });
    client.subscribe('meeting:secret');
    const msg = 'not allowed to join this room';
    b.deliver({ type: 'error', code: 'forbidden', message: msg, room: 'meeting:secret' });
    b.serverClose(4003);

    await waitFor(() => FakeWebSocket.all[2]?.sent.length === 1, 'auth on the third socket');
    const c = FakeWebSocket.all[2];
    c.deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.deepEqual(c.sent.slice(1), [
      { type: 'subscribe', room: 'shipment:MINE', since: 7 },
      { type: 'subscribe', room: 'shipment:NEW' },
    ]);
    assert.deepEqual(client.subscriptions, ['shipment:MINE', 'shipment:NEW']);
    const refused = rec.errors.filter((e) => e.code === 'room_refused');
    assert.deepEqual(refused.map((e) => e.rooms), [['meeting:secret']]);
  });

  test('a refusal that names no room does not drop a confirmed room being resumed', async () => {
    const { client, rec } = scripted({ rooms: ['shipment:MINE'] });
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    const a = FakeWebSocket.all[0];
    a.deliver({ type: 'welcome', rooms: ['user:alice'] });
    a.deliver({ type: 'subscribed', room: 'shipment:MINE', seq: 0 });
    a.serverClose(1006);

    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth on the second socket');
    const b = FakeWebSocket.all[1];
    b.deliver({ type: 'welcome', rooms: ['user:alice'] });
    client.subscribe('meeting:secret');
    b.deliver({ type: 'error', code: 'forbidden', message: 'not allowed to join this room' });
    b.serverClose(4003);

    await waitFor(() => FakeWebSocket.all[2]?.sent.length === 1, 'auth on the third socket');
    FakeWebSocket.all[2].deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.deepEqual(client.subscriptions, ['shipment:MINE']);
    assert.equal(FakeWebSocket.all[2].sent[1].room, 'shipment:MINE');
    assert.ok(rec.errors.some((e) => e.code === 'room_refused' && e.rooms.join() === 'meeting:secret'));
  });

  test('online while an attempt is under way opens no second socket', async () => {
    // a long backoff: only `online` can end the wait
    const { client } = scripted({ backoff: { initialMs: 60000, maxMs: 60000 } });
    client.connect();
    await waitFor(() => FakeWebSocket.all[0]?.sent.length === 1, 'auth');
    FakeWebSocket.all[0].deliver({ type: 'welcome', rooms: ['user:alice'] });
    FakeWebSocket.all[0].serverClose(1006);
    assert.equal(client.state, 'reconnecting');
    client.onOnline(); // back online while waiting: reconnect now
    await waitFor(() => FakeWebSocket.all[1]?.sent.length === 1, 'auth on the second socket');
    client.onOnline(); // again, while that attempt waits for its welcome
    await new Promise((r) => setTimeout(r, 50));
    const open = FakeWebSocket.all.filter((ws) => ws.readyState !== 3);
    assert.equal(open.length, 1, 'one socket open');
    FakeWebSocket.all.at(-1).deliver({ type: 'welcome', rooms: ['user:alice'] });
    assert.equal(client.state, 'open');
  });

  test('backoff grows exponentially, is capped and jittered', () => {
    const b = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    assert.equal(backoffDelay(0, b, () => 0), 50);
    assert.equal(backoffDelay(0, b, () => 1), 100);
    assert.equal(backoffDelay(3, b, () => 1), 800);
    assert.equal(backoffDelay(10, b, () => 1), 1000);
    assert.equal(backoffDelay(10, b, () => 0), 500);
  });
});

// ---- a scripted EventSource: why an SSE stream was refused ----

// A browser's EventSource: an error event says nothing about the HTTP status.
class FakeEventSource {
  static all = [];

  constructor(url) {
    this.url = new URL(url);
    this.closed = false;
    FakeEventSource.all.push(this);
  }

  close() {
    this.closed = true;
  }

  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  fail() {
    this.onerror?.({ type: 'error' });
  }
}

// A client on the scripted EventSource whose fetch answers every request with answer.
function scriptedSse(answer, extra = {}) {
  FakeEventSource.all = [];
  const fetches = [];
  const tokens = [];
  const made = makeClient('http://127.0.0.1:1', {
    WebSocket: undefined,
    EventSource: FakeEventSource,
    getToken: ({ refresh }) => {
      tokens.push(refresh);
      return `tok${tokens.length}`;
    },
    fetch: async (url, init) => {
      fetches.push({ url: String(url), init });
      return {
        status: answer.status,
        headers: new Headers(answer.headers ?? {}),
        json: async () => answer.body ?? null,
      };
    },
    ...extra,
  });
  return { ...made, fetches, tokens };
}

const welcome = { type: 'welcome', rooms: ['user:alice'] };

describe('client library: SSE refusals a browser does not report', () => {
  test('401: asks the same URL why, then refreshes the token', async () => {
    const { client, fetches, tokens, rec } = scriptedSse({ status: 401 });
    client.connect();
    await waitFor(() => FakeEventSource.all.length === 1, 'the first stream');
    FakeEventSource.all[0].fail();
    await waitFor(() => FakeEventSource.all.length === 2, 'the second stream');
    assert.equal(fetches[0].url, FakeEventSource.all[0].url.href, 'the same URL');
    assert.equal(fetches[0].init.headers.authorization, 'Bearer tok1');
    assert.ok(FakeEventSource.all[0].closed, 'the browser does not retry on its own');
    assert.equal(rec.closes[0].code, 4001);
    assert.deepEqual(tokens, [false, true]);
    assert.equal(FakeEventSource.all[1].url.searchParams.get('access_token'), 'tok2');
  });

  test('403: drops the rooms not confirmed, keeps the confirmed ones', async () => {
    const body = { error: { code: 403, message: 'not allowed to join a room' } };
    const { client, rec } = scriptedSse({ status: 403, body }, { rooms: ['shipment:MINE'] });
    client.connect();
    await waitFor(() => FakeEventSource.all.length === 1, 'the first stream');
    FakeEventSource.all[0].deliver(welcome);
    client.subscribe('shipment:NOTMINE'); // SSE: a new stream with both rooms
    await waitFor(() => FakeEventSource.all.length === 2, 'the second stream');
    assert.equal(FakeEventSource.all[1].url.searchParams.get('rooms'), 'shipment:MINE,shipment:NOTMINE');
    FakeEventSource.all[1].fail();
    await waitFor(() => FakeEventSource.all.length === 3, 'the third stream');
    assert.equal(FakeEventSource.all[2].url.searchParams.get('rooms'), 'shipment:MINE');
    assert.deepEqual(client.subscriptions, ['shipment:MINE']);
    assert.equal(rec.closes.at(-1).code, 4003);
    assert.ok(rec.errors.some((e) => e.code === 'room_refused' && e.rooms.join() === 'shipment:NOTMINE'));
  });

  test('403 naming a room: only that room is dropped', async () => {
    const body = { error: { code: 403, message: 'not allowed to join shipment:B' } };
    const { client } = scriptedSse({ status: 403, body }, { rooms: ['shipment:A', 'shipment:B'] });
    client.connect();
    await waitFor(() => FakeEventSource.all.length === 1, 'the first stream');
    FakeEventSource.all[0].fail();
    await waitFor(() => FakeEventSource.all.length === 2, 'the second stream');
    assert.deepEqual(client.subscriptions, ['shipment:A']);
  });

  test('429: waits at least the Retry-After', async () => {
    const { client, rec } = scriptedSse({ status: 429, headers: { 'retry-after': '2' } });
    client.connect();
    await waitFor(() => FakeEventSource.all.length === 1, 'the first stream');
    FakeEventSource.all[0].fail();
    await waitFor(() => rec.closes.length === 1, 'the close');
    assert.equal(rec.closes[0].code, 4029);
    assert.ok(rec.closes[0].reconnectInMs >= 2000, `${rec.closes[0].reconnectInMs} ms`);
    client.close();
  });

  test('a stream that fails for another reason is retried as before', async () => {
    const { client, rec, tokens } = scriptedSse({ status: 200 });
    client.connect();
    await waitFor(() => FakeEventSource.all.length === 1, 'the first stream');
    FakeEventSource.all[0].fail();
    await waitFor(() => FakeEventSource.all.length === 2, 'the second stream');
    assert.equal(rec.closes[0].code, 0);
    assert.deepEqual(tokens, [false]);
  });
});
