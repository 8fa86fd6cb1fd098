// Fan-out of notifications that reach the hub together (one publish request of many, stored in
// one transaction): every client of the room, WebSocket and SSE, gets each of them once, whole,
// in seq order (the same order for all), while a client of another room gets only its own.
// Messages without an ordering key may be processed in any order, so publish order is not
// the expectation; seq order is. The server's send buffer is small, so writes are split between
// what the socket takes at once and what is queued behind it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import EventSource from 'eventsource';
import { Client, notification, startServer, userToken, waitFor } from './realtime-lib.mjs';

let srv;

before(async () => {
  // a small socket send buffer: most batches go out in part at once and the rest queued
  srv = await startServer({ realtime: { send_buffer: 4096 } });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
});

const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });

function sseClient(url) {
  const got = [];
  const es = new EventSource(url);
  es.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === 'event') got.push(f);
  };
  return { es, got };
}

// Each WebSocket client gets every notification of want once, whole (padLen(i) is the length of
// the padding notification i carries), in ascending seq: the same order for all. Returns it.
async function sameOrderForAll(clients, want, padLen) {
  let order = null;
  for (const c of clients) {
    const evs = await c.waitEvents(want.size);
    const ids = evs.map((e) => e.id);
    assert.equal(ids.length, want.size, 'nothing more');
    assert.deepEqual(new Set(ids), want, 'every notification once');
    for (let i = 1; i < evs.length; i++) assert.ok(evs[i].seq > evs[i - 1].seq, 'seq ascends');
    for (const e of evs) {
      assert.equal(e.data.data.pad.length, padLen(e.data.data.i), 'frames arrive whole');
    }
    order ??= ids;
    assert.deepEqual(ids, order);
  }
  return order;
}

test('a batch of notifications reaches every client of the room complete and in order', async () => {
  const ws = [];
  for (let i = 0; i < 3; i++) {
    const c = await Client.open(srv.wsUrl, bearer(await userToken('fan')));
    await c.waitFrame('welcome');
    ws.push(c);
  }
  const other = await Client.open(srv.wsUrl, bearer(await userToken('bystander')));
  await other.waitFrame('welcome');
  const sse = sseClient(`${srv.url}/events?access_token=${await userToken('fan')}`);
  await waitFor(async () => sse.es.readyState === EventSource.OPEN, 'the SSE stream');
  await waitFor(
    async () => (await srv.metric('dr_realtime_connections', 'transport="sse"')) >= 1,
    'the SSE client to be registered',
  );

  // sizes from small to larger than a typical socket write, interleaved with another room
  const mine = Array.from({ length: 200 }, (_, i) =>
    notification('fan', i, { data: { i, pad: 'x'.repeat((i * 97) % 3000) } }),
  );
  const theirs = Array.from({ length: 20 }, (_, i) => notification('bystander', i));
  const batch = [];
  mine.forEach((n, i) => {
    batch.push(n);
    if (i % 10 === 0) batch.push(theirs[i / 10]);
  });
  await srv.publish(batch);

  const want = new Set(mine.map((n) => n.notification_id));
  const order = await sameOrderForAll(ws, want, (i) => (i * 97) % 3000);
  await waitFor(async () => sse.got.length >= want.size, 'the SSE client to get all');
  assert.deepEqual(
    sse.got.map((e) => e.id),
    order,
  );
  const theirsGot = await other.waitEvents(theirs.length);
  assert.deepEqual(
    new Set(theirsGot.map((e) => e.id)),
    new Set(theirs.map((n) => n.notification_id)),
  );
  assert.equal(theirsGot.length, theirs.length);
  sse.es.close();
  for (const c of [...ws, other]) await c.close();
});

// A larger room (120 connections, WebSocket and SSE): single notifications and a batch, all of
// them to every client, once, whole, in the same seq order, with the small send buffer
// splitting writes.
test('a large room gets every notification once, whole and in order', async () => {
  const org = 'big';
  const ws = [];
  for (let i = 0; i < 100; i++) {
    const c = await Client.open(srv.wsUrl, bearer(await userToken(`w${i}`, { org })));
    await c.waitFrame('welcome');
    ws.push(c);
  }
  const sse = [];
  for (let i = 0; i < 20; i++) {
    sse.push(sseClient(`${srv.url}/events?access_token=${await userToken(`s${i}`, { org })}`));
  }
  await waitFor(
    async () => (await srv.metric('dr_realtime_connections', 'transport="sse"')) >= 20,
    'the SSE clients to be registered',
  );
  const room = { room: `org:${org}`, org_id: org };
  const singles = Array.from({ length: 15 }, (_, i) =>
    notification('big-pub', i, { ...room, data: { i, pad: 'y'.repeat((i * 389) % 2500) } }),
  );
  for (const n of singles) await srv.publish([n]); // one drain each
  const batch = Array.from({ length: 60 }, (_, i) =>
    notification('big-pub', 100 + i, { ...room, data: { i: 100 + i, pad: 'z'.repeat((i * 211) % 3000) } }),
  );
  await srv.publish(batch);

  const want = new Set([...singles, ...batch].map((n) => n.notification_id));
  const order = await sameOrderForAll(ws, want, (i) =>
    i < 100 ? (i * 389) % 2500 : ((i - 100) * 211) % 3000,
  );
  for (const s of sse) {
    await waitFor(async () => s.got.length >= want.size, 'an SSE client to get all');
    assert.deepEqual(
      s.got.map((e) => e.id),
      order,
    );
    s.es.close();
  }
  for (const c of ws) await c.close();
});
