// Two data-router instances sharing one PostgreSQL database and one Redis: clients connected to
// instance A get what instance B stored, exactly once and in seq order (WebSocket and SSE), B's
// own clients are not given Redis's echo of B's notifications, and a Redis outage loses nothing
// for a client that resumes when told to (the resync frame). Redis here is this test's own
// redis-server, so it can be stopped, frozen and restarted.
//
// Only B processes publications (A has no route to the realtime processor), so which instance
// stores a notification is known: what A's clients get can only have come through Redis.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import {
  Client,
  needPgAndRedis,
  notification,
  startPair,
  storeWithoutPublish,
  userToken,
  waitFor,
} from './realtime-lib.mjs';

const RUN = Math.random().toString(36).slice(2, 8);
const u = (name) => `${name}-${RUN}`;
const skip = needPgAndRedis();
const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });
const redisCli = (port, ...args) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).trim();

// Exactly once and in seq order: B's two workers store concurrently, so compare ids as sets.
function assertExactlyOnceInOrder(events, expectedIds, what) {
  const got = events.map((e) => e.id);
  assert.equal(got.length, new Set(got).size, `${what}: no duplicate (${got.join(',')})`);
  assert.deepEqual(new Set(got), new Set(expectedIds), `${what}: no gap`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].seq > events[i - 1].seq, `${what}: seq increases at ${i}`);
  }
}

// Every client a test opens, closed in after() even when the test failed half-way (an open
// EventSource would keep reconnecting and the process alive).
const opened = [];

function sse(url, headers) {
  const es = new EventSource(url, { headers });
  const s = { es, frames: [], events: () => s.frames.filter((f) => f.type === 'event') };
  es.onmessage = (e) => s.frames.push(JSON.parse(e.data));
  es.onerror = () => {};
  opened.push(() => es.close());
  return s;
}

async function wsOpen(url, tok) {
  const c = await Client.open(url, bearer(tok));
  opened.push(() => c.ws.terminate());
  return c;
}

describe('Redis bus between two instances', { skip }, () => {
  let pair, redis, a, b, db;

  before(async () => {
    pair = await startPair('dr-bus');
    ({ redis, a, b, db } = pair);
  });

  after(async () => {
    for (const close of opened) close();
    await pair?.stop();
  });

  test('WebSocket and SSE clients on A get what B stored, exactly once, in seq order', async () => {
    const user = u('alice');
    const tok = await userToken(user);
    const ws = await wsOpen(a.wsUrl, tok);
    await ws.waitFrame('welcome');
    const es = sse(`${a.url}/events`, { Authorization: `Bearer ${tok}` });
    await waitFor(() => es.frames.some((f) => f.type === 'welcome'), 'SSE welcome');
    const local = await wsOpen(b.wsUrl, tok); // B's own client
    await local.waitFrame('welcome');
    const dup0 = await b.metric('dr_realtime_bus_received_total', 'outcome="duplicate"');

    const list = Array.from({ length: 12 }, (_, i) => notification(user, i));
    for (const n of list) await b.publish([n]);
    await b.publish([notification(u('bob'), 1)]); // another user's: nobody here gets it
    const ids = list.map((n) => n.notification_id);

    assertExactlyOnceInOrder(await ws.waitEvents(list.length), ids, 'WebSocket on A');
    await waitFor(() => es.events().length >= list.length, 'SSE events on A');
    assertExactlyOnceInOrder(es.events(), ids, 'SSE on A');
    assertExactlyOnceInOrder(await local.waitEvents(list.length), ids, 'WebSocket on B');

    // Redis echoes B's notifications back to B: once all 13 echoes are counted as duplicates,
    // nothing more can arrive, and B's client still has each notification once.
    await waitFor(
      async () =>
        (await b.metric('dr_realtime_bus_received_total', 'outcome="duplicate"')) >= dup0 + 13,
      'B to drop the echoes of its own notifications',
    );
    assertExactlyOnceInOrder(local.events(), ids, 'WebSocket on B after the echoes');
    assert.ok((await b.metric('dr_realtime_bus_published_total', 'outcome="sent"')) >= 13);
    assert.ok((await a.metric('dr_realtime_bus_received_total', 'outcome="delivered"')) >= 13);
    assert.equal(await a.metric('dr_realtime_bus_received_total', 'outcome="duplicate"'), 0);
    assert.equal(ws.events().length, list.length, 'still exactly once on A');
    assert.equal(es.events().length, list.length, 'still exactly once on A (SSE)');
    await ws.close();
    await local.close();
    es.es.close();
  });

  test('Redis stopped and restarted: the bus reconnects, clients resync, nothing lost or doubled', async () => {
    const user = u('carol');
    const tok = await userToken(user);
    const ws = await wsOpen(a.wsUrl, tok);
    await ws.waitFrame('welcome');
    const es = sse(`${a.url}/events`, { Authorization: `Bearer ${tok}` });
    await waitFor(() => es.frames.some((f) => f.type === 'welcome'), 'SSE welcome');
    const onB = await wsOpen(b.wsUrl, tok); // B's own client: B delivers to it during the outage
    await onB.waitFrame('welcome');
    const reconnects0 = await a.metric('dr_realtime_bus_reconnects_total');

    const first = Array.from({ length: 4 }, (_, i) => notification(user, i));
    for (const n of first) await b.publish([n]);
    await ws.waitEvents(first.length);
    await onB.waitEvents(first.length);
    await waitFor(() => es.events().length >= first.length, 'SSE events before the outage');
    const lastWs = ws.events().at(-1).seq;
    const lastSse = es.events().at(-1).seq;

    await redis.stop();
    for (const s of [a, b]) {
      await waitFor(async () => (await s.metric('dr_realtime_bus_state')) !== 2, 'the bus down');
      const ready = await s.request('GET', '/readyz');
      assert.equal(ready.status, 503, 'not ready while Redis is down');
      assert.equal(ready.json.redis, 'down');
    }
    // stored on B while the bus is down: A cannot hear of them
    const during = Array.from({ length: 5 }, (_, i) => notification(user, 100 + i));
    for (const n of during) await b.publish([n]);
    await waitFor(
      async () => (await b.metric('dr_realtime_bus_published_total', 'outcome="dropped"')) >= 5,
      'B to drop what it cannot publish',
    );
    // B delivers them to its own client at once, but tells it to resume from before the outage:
    // until B's recovery is done, it does not know what it missed from the others
    const duringOnB = (await onB.waitEvents(first.length + during.length)).slice(first.length);
    const before = ws.events().at(-1).seq;
    for (const e of duringOnB) {
      assert.ok(e.seq > before, 'stored after the link was lost');
      assert.equal(e.resume, before, `resume point of ${e.seq}: where the link was lost`);
    }
    await redis.start();
    for (const s of [a, b]) {
      await waitFor(async () => (await s.metric('dr_realtime_bus_state')) === 2, 'the bus up');
      await waitFor(async () => (await s.request('GET', '/readyz')).status === 200, 'ready again');
    }
    assert.ok((await a.metric('dr_realtime_bus_reconnects_total')) > reconnects0, 'reconnected');
    assert.match(a.log(), /redis bus down/, 'the loss is logged');
    // B's recovery found nothing missing: its client may resume from the newest it got
    const mark = await onB.waitFrame('resume', 20000);
    assert.equal(mark.seq, duringOnB.at(-1).seq, 'the resume point moves up after the recovery');
    assert.equal(onB.frames.filter((f) => f.type === 'resync').length, 0, 'B missed nothing');

    // A tells its clients in the room to resync; they resume from min(last seq, since)
    const rs = await ws.waitFrame('resync', 20000);
    assert.ok(Number.isInteger(rs.since) && rs.since >= 0, `resync since ${rs.since}`);
    await waitFor(() => es.frames.some((f) => f.type === 'resync'), 'SSE resync frame', 20000);
    const rsSse = es.frames.find((f) => f.type === 'resync');
    assert.equal(ws.events().length, first.length, 'nothing arrived live during the outage');
    await ws.close();
    es.es.close();

    const ws2 = await wsOpen(`${a.wsUrl}?since=${Math.min(lastWs, rs.since)}`, tok);
    await ws2.waitFrame('welcome');
    const es2 = sse(`${a.url}/events?since=${Math.min(lastSse, rsSse.since)}`, {
      Authorization: `Bearer ${tok}`,
    });
    // and live again through the re-established bus
    const later = Array.from({ length: 3 }, (_, i) => notification(user, 200 + i));
    await ws2.waitEvents(during.length);
    for (const n of later) await b.publish([n]);

    const all = [...first, ...during, ...later].map((n) => n.notification_id);
    // events seen before the outage plus after the resume; a client drops seqs it already has
    // (resync.since may be below its last seq), which here must be none
    const merged = [...ws.events(), ...(await ws2.waitEvents(during.length + later.length))];
    assertExactlyOnceInOrder(merged, all, 'WebSocket across the outage');
    // the resync point is below everything that was missed
    const missed = merged.filter((e) => during.some((n) => n.notification_id === e.id));
    assert.ok(rs.since < missed[0].seq && rsSse.since < missed[0].seq, 'resync covers the gap');
    await waitFor(
      () => es2.events().length >= during.length + later.length,
      'SSE events after the resume',
    );
    assertExactlyOnceInOrder([...es.events(), ...es2.events()], all, 'SSE across the outage');
    await ws2.close();
    es2.es.close();
  });

  test('a frozen Redis (no answers, connection open) is detected by the timeouts', async () => {
    const reconnects0 = await a.metric('dr_realtime_bus_reconnects_total');
    redis.proc.kill('SIGSTOP');
    try {
      await waitFor(
        async () => (await a.metric('dr_realtime_bus_state')) !== 2,
        'the keep-alive to time out',
      );
    } finally {
      redis.proc.kill('SIGCONT');
    }
    for (const s of [a, b]) {
      await waitFor(async () => (await s.metric('dr_realtime_bus_state')) === 2, 'the bus up');
    }
    assert.ok((await a.metric('dr_realtime_bus_reconnects_total')) > reconnects0);
    assert.match(a.log(), /keep-alive timeout|command timeout/);

    // delivery works again
    const user = u('dave');
    const tok = await userToken(user);
    const ws = await wsOpen(a.wsUrl, tok);
    await ws.waitFrame('welcome');
    const list = [notification(user, 1), notification(user, 2)];
    for (const n of list) await b.publish([n]);
    assertExactlyOnceInOrder(
      await ws.waitEvents(list.length),
      list.map((n) => n.notification_id),
      'after the freeze',
    );
    await ws.close();
  });

  test('stored but never published (its instance died before the PUBLISH): clients resync', async () => {
    const user = u('frank');
    const tok = await userToken(user);
    const ws = await wsOpen(a.wsUrl, tok);
    await ws.waitFrame('welcome');
    const first = notification(user, 1);
    await b.publish([first]);
    const [got] = await ws.waitEvents(1);
    const lost0 = await a.metric('dr_realtime_bus_lost_total');

    // what an instance leaves when it dies between its commit and its PUBLISH: a stored row
    // that no instance ever published
    const n = notification(user, 2);
    const seq = storeWithoutPublish(db, n);
    assert.ok(seq > got.seq, `stored above what the client has (${seq})`);

    // the audit finds it in the store, never seen over the bus, and tells the room to resync
    const rs = await ws.waitFrame('resync', 20000);
    assert.ok(rs.since < seq && rs.since >= got.seq, `resync since ${rs.since} covers ${seq}`);
    assert.ok((await a.metric('dr_realtime_bus_lost_total')) > lost0, 'counted as lost');
    assert.match(a.log(), /never received over the bus/);
    assert.equal(ws.events().length, 1, 'nothing more arrived live');
    await ws.close();

    const ws2 = await wsOpen(`${a.wsUrl}?since=${rs.since}`, tok);
    await ws2.waitFrame('welcome');
    const later = notification(user, 3);
    const [caught] = await ws2.waitEvents(1);
    assert.equal(caught.id, n.notification_id, 'the lost notification, from the store');
    assert.equal(caught.seq, seq);
    await b.publish([later]);
    assertExactlyOnceInOrder(
      await ws2.waitEvents(2),
      [n.notification_id, later.notification_id],
      'after the resync',
    );
    await ws2.close();
  });

  test('an unreadable message with a huge seq on the bus does not stop the audit', async () => {
    const user = u('grace');
    const tok = await userToken(user);
    const ws = await wsOpen(a.wsUrl, tok);
    await ws.waitFrame('welcome');
    await b.publish([notification(user, 1)]);
    const [got] = await ws.waitEvents(1);
    const invalid0 = await a.metric('dr_realtime_bus_received_total', 'outcome="invalid"');
    const lost0 = await a.metric('dr_realtime_bus_lost_total');

    // anyone who can reach the Redis can PUBLISH on the channel: not a notification, dropped
    // before its seq counts for anything
    const huge = '{"seq":1000000000000}';
    assert.equal(redisCli(redis.port, 'PUBLISH', 'dr:notifications', huge), '2', 'A and B hear it');
    await waitFor(
      async () =>
        (await a.metric('dr_realtime_bus_received_total', 'outcome="invalid"')) > invalid0,
      'A to drop the unreadable message',
    );

    const n = notification(user, 2);
    const seq = storeWithoutPublish(db, n);
    const rs = await ws.waitFrame('resync', 20000);
    assert.ok(rs.since < seq && rs.since >= got.seq, `resync since ${rs.since} covers ${seq}`);
    assert.ok((await a.metric('dr_realtime_bus_lost_total')) > lost0, 'counted as lost');
    assert.doesNotMatch(a.log(), /the store was reset/);
    await ws.close();
  });

  // Last: it empties the shared store.
  test('store reset: a notification of the new numbering never published is still found', async () => {
    const user = u('heidi');
    const tok = await userToken(user);
    const ws = await wsOpen(a.wsUrl, tok);
    await ws.waitFrame('welcome');
    for (let i = 0; i < 3; i++) await b.publish([notification(user, i)]);
    await ws.waitEvents(3);
    const lost0 = await a.metric('dr_realtime_bus_lost_total');

    execFileSync('psql', [db, '-qAt', '-c', 'TRUNCATE rt_notifications RESTART IDENTITY']);
    const n = notification(user, 10);
    assert.equal(storeWithoutPublish(db, n), 1, 'the new numbering starts from 1');
    const later = notification(user, 11);
    await b.publish([later]); // seq 2: A's client, at 3 in the old numbering, would drop it

    // told to resync from the start of the new numbering, and the audit finds seq 1
    const rs = await ws.waitFrame('resync', 20000);
    assert.equal(rs.since, 0, 'resync from the start of the new numbering');
    await waitFor(
      async () => (await a.metric('dr_realtime_bus_lost_total')) > lost0,
      'the audit to find the lost notification of the new numbering',
    );
    assert.ok(ws.frames.filter((f) => f.type === 'resync').every((f) => f.since === 0));
    await ws.close();

    const ws2 = await wsOpen(`${a.wsUrl}?since=0`, tok);
    await ws2.waitFrame('welcome');
    assertExactlyOnceInOrder(
      await ws2.waitEvents(2),
      [n.notification_id, later.notification_id],
      'after the resync',
    );
    await ws2.close();
  });
});
