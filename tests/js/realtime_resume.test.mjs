// Store-then-fan-out and resume: events published through the local publish API on topic
// client-notifications reach WebSocket and SSE clients exactly once in seq order across
// disconnects (since / Last-Event-ID), also while events keep arriving during the catch-up;
// a since above every stored seq (a store reset or restored since) resumes from the store's
// newest seq with a resync marked reset; the inbox API and read receipts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import { Client, notification, startServer, userToken, waitFor } from './realtime-lib.mjs';

const RUN = Math.random().toString(36).slice(2, 8);
const u = (name) => `${name}-${RUN}`;
const ROOM = `meeting:poll-${RUN}`;
let srv;

const backends = [['sqlite', {}]];
if (process.env.DR_TEST_PG_URL) backends.push(['postgresql', { DATABASE_URL: process.env.DR_TEST_PG_URL }]);

for (const [backend, env] of backends) {
  describe(backend, () => {
    before(async () => {
      // small catch-up pages so resume crosses page boundaries
      srv = await startServer({ realtime: { catchup_page: 4 }, env });
    });

    after(async () => {
      const r = await srv.stop();
      assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
    });

    const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });
    const seqs = (evs) => evs.map((e) => e.seq);

    // Exactly once and in seq order. Two workers store concurrently, so seq order may differ from
    // publish order: compare as sets.
    function assertExactlyOnceInOrder(events, expectedIds) {
      const got = events.map((e) => e.id);
      assert.equal(got.length, expectedIds.length, 'no duplicate');
      assert.deepEqual(new Set(got), new Set(expectedIds), 'no gap');
      const s = seqs(events);
      for (let i = 1; i < s.length; i++) assert.ok(s[i] > s[i - 1], `seq increases at ${i}`);
    }

    async function publishEach(list) {
      for (const n of list) await srv.publish([n]);
    }

    describe('WebSocket resume', () => {
      test('publish N, disconnect, publish more, reconnect with since: all exactly once', async () => {
        const tok = await userToken(u('u1'));
        const first = Array.from({ length: 6 }, (_, i) => notification(u('u1'), i));
        const second = Array.from({ length: 9 }, (_, i) => notification(u('u1'), 100 + i));

        const a = await Client.open(srv.wsUrl, bearer(tok));
        await a.waitFrame('welcome');
        await publishEach(first);
        const got1 = await a.waitEvents(first.length);
        await a.close();
        assertExactlyOnceInOrder(got1, first.map((n) => n.notification_id));
        const last = got1.at(-1).seq;

        await publishEach(second);
        await srv.publish([notification(u('someone-else'), 1)]); // not for u1

        const b = await Client.open(`${srv.wsUrl}?since=${last}`, bearer(tok));
        await b.waitFrame('welcome');
        const got2 = await b.waitEvents(second.length);
        const third = [notification(u('u1'), 200), notification(u('u1'), 201)];
        await publishEach(third);
        const all2 = await b.waitEvents(second.length + third.length);
        assertExactlyOnceInOrder(all2, [...second, ...third].map((n) => n.notification_id));
        assert.ok(got2[0].seq > last);
        await b.close();
      });

      test('events published during the catch-up are neither lost nor doubled', async () => {
        const tok = await userToken(u('u2'));
        const before = Array.from({ length: 10 }, (_, i) => notification(u('u2'), i));
        await srv.publish(before.slice(0, 1));
        const probe = await Client.open(`${srv.wsUrl}?since=0`, bearer(tok));
        const [firstEv] = await probe.waitEvents(1);
        await probe.close();
        const since = firstEv.seq;
        await srv.publish(before.slice(1));

        const during = Array.from({ length: 30 }, (_, i) => notification(u('u2'), 1000 + i));
        const connecting = Client.open(`${srv.wsUrl}?since=${since}`, bearer(tok));
        const publishing = (async () => {
          for (let i = 0; i < during.length; i += 3) await srv.publish(during.slice(i, i + 3));
        })();
        const c = await connecting;
        await publishing;
        const want = [...before.slice(1), ...during].map((n) => n.notification_id);
        const evs = await c.waitEvents(want.length);
        await new Promise((r) => setTimeout(r, 200)); // anything extra would show up now
        const ids = c.events().map((e) => e.id);
        assert.equal(new Set(ids).size, ids.length, 'no duplicate');
        assert.deepEqual(new Set(ids), new Set(want), 'no gap');
        const s = seqs(c.events());
        assert.deepEqual(s, [...s].sort((x, y) => x - y), 'seq order');
        assert.ok(evs.every((e) => e.seq > since));
        await c.close();
      });

      test('subscribe to a context room with since gets its history, then subscribed', async () => {
        // an admin may join any room; rooms listed in the token would be joined at connect
        const tok = await userToken(u('u3'), { role: 'admin' });
        const hist = Array.from({ length: 5 }, (_, i) =>
          notification(u('u3'), i, { room: ROOM, notification_type: 'meeting.response' }),
        );
        const other = await Client.open(srv.wsUrl, bearer(await userToken(u('u3b'), { rooms: [ROOM] })));
        await other.waitFrame('welcome');
        await publishEach(hist);
        await other.waitEvents(hist.length); // all stored
        other.send({ type: 'unsubscribe', room: ROOM });
        assert.equal((await other.waitFrame('unsubscribed')).room, ROOM);

        const c = await Client.open(srv.wsUrl, bearer(tok));
        await c.waitFrame('welcome');
        c.send({ type: 'subscribe', room: ROOM, since: 0 });
        const sub = await c.waitFrame('subscribed');
        const evs = c.events().filter((e) => e.room === ROOM);
        assertExactlyOnceInOrder(evs, hist.map((n) => n.notification_id));
        assert.equal(sub.seq, evs.at(-1).seq);
        assert.equal(evs[0].event, 'meeting.response');
        // live after the catch-up
        await srv.publish([notification(u('u3'), 9, { room: ROOM })]);
        await c.waitEvents(6);
        assert.equal(other.events().length, hist.length, 'nothing after unsubscribing');
        await c.close();
        await other.close();
      });
    });

    describe('SSE resume', () => {
      function sse(url, headers) {
        const es = new EventSource(url, { headers });
        const frames = [];
        const ids = [];
        es.onmessage = (e) => {
          const f = JSON.parse(e.data);
          frames.push(f);
          if (f.type === 'event') ids.push(e.lastEventId);
        };
        es.onerror = () => {};
        return { es, frames, ids, events: () => frames.filter((f) => f.type === 'event') };
      }

      test('id: carries the seq; Last-Event-ID resumes exactly once', async () => {
        const tok = await userToken(u('s1'));
        const first = Array.from({ length: 4 }, (_, i) => notification(u('s1'), i));
        const second = Array.from({ length: 7 }, (_, i) => notification(u('s1'), 10 + i));
        const a = sse(`${srv.url}/events`, { Authorization: `Bearer ${tok}` });
        await waitFor(() => a.frames.length > 0, 'welcome');
        assert.equal(a.frames[0].type, 'welcome');
        await publishEach(first);
        await waitFor(() => a.events().length >= 4, '4 SSE events');
        a.es.close();
        assert.deepEqual(a.ids, a.events().map((e) => String(e.seq)));
        const lastId = a.ids.at(-1);

        await publishEach(second);
        const b = sse(`${srv.url}/events`, { Authorization: `Bearer ${tok}`, 'Last-Event-ID': lastId });
        await waitFor(() => b.events().length >= 7, '7 resumed SSE events');
        const live = notification(u('s1'), 99);
        await srv.publish([live]);
        await waitFor(() => b.events().length >= 8, 'a live SSE event');
        await new Promise((r) => setTimeout(r, 150));
        b.es.close();
        assertExactlyOnceInOrder(b.events(), [...second, live].map((n) => n.notification_id));
        assert.equal(b.events()[7].id, live.notification_id);
        assert.equal(b.events().length, 8);
      });

      // RFC 9110 5.5: the whitespace after a header's value is not part of it, nor of the seq
      test('Last-Event-ID with spaces or a tab after the seq resumes the same', async () => {
        const tok = await userToken(u('s2'));
        const first = Array.from({ length: 3 }, (_, i) => notification(u('s2'), i));
        const second = Array.from({ length: 3 }, (_, i) => notification(u('s2'), 10 + i));
        const a = sse(`${srv.url}/events`, { Authorization: `Bearer ${tok}` });
        await waitFor(() => a.frames.length > 0, 'welcome');
        await publishEach(first);
        await waitFor(() => a.events().length >= 3, '3 SSE events');
        a.es.close();
        const lastId = a.ids.at(-1);

        await publishEach(second);
        for (const ws of ['  ', '\t', ' \t ']) {
          const what = JSON.stringify(lastId + ws);
          const b = sse(`${srv.url}/events`, { Authorization: `Bearer ${tok}`, 'Last-Event-ID': lastId + ws });
          let refused = null;
          b.es.onerror = (e) => {
            refused = e.status ?? 'error';
          };
          await waitFor(() => b.events().length >= 3 || refused, `3 resumed SSE events for ${what}`);
          await new Promise((r) => setTimeout(r, 150));
          b.es.close();
          assert.equal(refused, null, what);
          assertExactlyOnceInOrder(b.events(), second.map((n) => n.notification_id));
        }
      });

      test('heartbeat comments keep the stream open', async () => {
        const hb = await startServer({ realtime: { heartbeat: '100ms' }, env });
        try {
          const tok = await userToken(u('hb'));
          const r = await new Promise((resolve, reject) => {
            import('node:http').then(({ default: http }) => {
              const req = http.get(`${hb.url}/events`, { headers: { Authorization: `Bearer ${tok}` } },
                (res) => {
                  let text = '';
                  res.on('data', (d) => {
                    text += d;
                    if ((text.match(/: ping/g) || []).length >= 2) {
                      req.destroy();
                      resolve({ res, text });
                    }
                  });
                });
              req.on('error', reject);
            });
          });
          assert.equal(r.res.headers['content-type'], 'text/event-stream');
          assert.match(r.text, /^retry: \d+\n\n/);
        } finally {
          assert.equal((await hb.stop()).code, 0);
        }
      });
    });

    describe('resume from a since above every stored seq', () => {
      const HUGE = '9223372036854775807';
      // in a JSON number: the largest integer a double holds exactly
      const BIG = Number.MAX_SAFE_INTEGER;

      function sse(url, headers) {
        const es = new EventSource(url, { headers });
        const recs = [];
        es.onmessage = (e) => recs.push({ f: JSON.parse(e.data), id: e.lastEventId });
        es.onerror = () => {};
        const frames = () => recs.map((r) => r.f);
        return { es, recs, frames, events: () => frames().filter((f) => f.type === 'event') };
      }

      // The newest stored seq right now: a notification stored and seen live.
      async function storeHead(user) {
        const tok = await userToken(user);
        const c = await Client.open(srv.wsUrl, bearer(tok));
        await c.waitFrame('welcome');
        await srv.publish([notification(user, 'head')]);
        const [e] = await c.waitEvents(1);
        await c.close();
        return e.seq;
      }

      // After a resync with reset at or above head: nothing old, then new events live once.
      async function assertResumesFromHead(frames, events, head, user, room) {
        await waitFor(() => frames().some((f) => f.type === 'resync'), 'a resync frame');
        const rs = frames().find((f) => f.type === 'resync');
        assert.equal(rs.reset, true);
        assert.ok(Number.isSafeInteger(rs.since) && rs.since >= head, `since ${rs.since} >= ${head}`);
        const ns = [notification(user, 1, { room }), notification(user, 2, { room })];
        await publishEach(ns);
        await waitFor(() => events().length >= 2, 'new events after the resync');
        await new Promise((r) => setTimeout(r, 150)); // anything extra would show up now
        assertExactlyOnceInOrder(events(), ns.map((n) => n.notification_id));
        assert.ok(events()[0].seq > rs.since);
        const types = frames().map((f) => f.type);
        assert.ok(types.indexOf('resync') < types.indexOf('event'), 'resync before the events');
        return rs;
      }

      test('WebSocket ?since= above the head: resync reset, then new events', async () => {
        const user = u('h1');
        const head = await storeHead(user);
        const c = await Client.open(`${srv.wsUrl}?since=${HUGE}`, bearer(await userToken(user)));
        await c.waitFrame('welcome');
        await assertResumesFromHead(() => c.frames, () => c.events(), head, user, `user:${user}`);
        await c.close();
      });

      test('WebSocket auth message with a since above the head', async () => {
        const user = u('h2');
        const head = await storeHead(user);
        const c = await Client.open(srv.wsUrl);
        c.send({ type: 'auth', token: await userToken(user), since: BIG });
        await c.waitFrame('welcome');
        await assertResumesFromHead(() => c.frames, () => c.events(), head, user, `user:${user}`);
        await c.close();
      });

      test('WebSocket subscribe with a since above the head', async () => {
        const user = u('h3');
        const room = `meeting:poll-h3-${RUN}`;
        const head = await storeHead(user);
        const c = await Client.open(srv.wsUrl, bearer(await userToken(user, { role: 'admin' })));
        await c.waitFrame('welcome');
        c.send({ type: 'subscribe', room, since: BIG });
        const sub = await c.waitFrame('subscribed');
        assert.equal(sub.room, room);
        const rs = await assertResumesFromHead(() => c.frames, () => c.events(), head, user, room);
        assert.equal(sub.seq, rs.since, 'resumed from the seq the resync names');
        await c.close();
      });

      test('SSE Last-Event-ID above the head: the resync record carries id: since', async () => {
        const user = u('h4');
        const head = await storeHead(user);
        const tok = await userToken(user);
        const s = sse(`${srv.url}/events`, { Authorization: `Bearer ${tok}`, 'Last-Event-ID': HUGE });
        await waitFor(() => s.frames().length > 0, 'welcome');
        const rs = await assertResumesFromHead(s.frames, s.events, head, user, `user:${user}`);
        assert.equal(s.recs.find((r) => r.f.type === 'resync').id, String(rs.since));
        s.es.close();
      });

      test('since in the query is read whole or refused, never cut short', async () => {
        const tok = await userToken(u('q1'));
        const padded = `${'0'.repeat(35)}1`; // over 31 bytes, a seq all the same
        const c = await Client.open(`${srv.wsUrl}?since=${padded}`, bearer(tok));
        assert.equal((await c.waitFrame('welcome')).since, 1);
        await c.close();
        for (const bad of [`${'0'.repeat(70)}1`, '1%00junk', '', '-1']) {
          await assert.rejects(Client.open(`${srv.wsUrl}?since=${bad}`, bearer(tok)), (err) => {
            assert.equal(err.status, 400, `WebSocket since=${bad}: ${err.message}`);
            return true;
          });
          const r = await fetch(`${srv.url}/events?since=${bad}`, { headers: { Authorization: `Bearer ${tok}` } });
          assert.equal(r.status, 400, `SSE since=${bad}`);
          assert.match((await r.json()).error.message, /since/);
        }
        const ac = new AbortController();
        const r = await fetch(`${srv.url}/events?since=${padded}`, {
          headers: { Authorization: `Bearer ${tok}` },
          signal: ac.signal,
        });
        assert.equal(r.status, 200);
        const reader = r.body.getReader();
        let text = '';
        while (!text.includes('"welcome"')) text += new TextDecoder().decode((await reader.read()).value);
        assert.match(text, /"since":1\b/);
        ac.abort();
      });

      test('SSE ?since= above the head', async () => {
        const user = u('h5');
        const head = await storeHead(user);
        const tok = await userToken(user);
        const s = sse(`${srv.url}/events?since=${BIG}`, { Authorization: `Bearer ${tok}` });
        await waitFor(() => s.frames().length > 0, 'welcome');
        await assertResumesFromHead(s.frames, s.events, head, user, `user:${user}`);
        s.es.close();
      });

      test('events stored while the connection resumes from above the head are not lost', async () => {
        const user = u('h6');
        await storeHead(user);
        const tok = await userToken(user);
        const all = Array.from({ length: 30 }, (_, i) => notification(user, i));
        const after = [];
        let welcomed = false;
        const c = await Client.open(`${srv.wsUrl}?since=${HUGE}`, bearer(tok));
        c.waitFrame('welcome').then(() => (welcomed = true), () => {});
        for (const n of all) {
          const late = welcomed;
          await srv.publish([n]);
          if (late) after.push(n.notification_id);
        }
        assert.ok(after.length > 0, 'some published after the welcome');
        await waitFor(() => after.every((id) => c.events().some((e) => e.id === id)), 'all after');
        await new Promise((r) => setTimeout(r, 150));
        const evs = c.events();
        const ids = evs.map((e) => e.id);
        assert.equal(new Set(ids).size, ids.length, 'no duplicate');
        const s = seqs(evs);
        assert.deepEqual(s, [...s].sort((x, y) => x - y), 'seq order');
        const rs = c.frames.find((f) => f.type === 'resync');
        assert.ok(rs?.reset, 'resync reset');
        assert.ok(evs.every((e) => e.seq > rs.since));
        await c.close();
      });

      test('a since at the head is an ordinary resume: no resync', async () => {
        const user = u('h7');
        const head = await storeHead(u('h7-other')); // above every seq of user's rooms
        const c = await Client.open(`${srv.wsUrl}?since=${head}`, bearer(await userToken(user)));
        await c.waitFrame('welcome');
        const n = notification(user, 1);
        await srv.publish([n]);
        const [e] = await c.waitEvents(1);
        assert.equal(e.id, n.notification_id);
        assert.ok(!c.frames.some((f) => f.type === 'resync'));
        await c.close();
      });

      if (backend === 'sqlite') {
        test('an empty store: resync from 0, then everything new', async () => {
          const fresh = await startServer({ env });
          try {
            const user = u('h8');
            const tok = await userToken(user);
            const c = await Client.open(`${fresh.wsUrl}?since=1000`, bearer(tok));
            await c.waitFrame('welcome');
            const rs = await c.waitFrame('resync');
            assert.deepEqual(rs, { type: 'resync', since: 0, reset: true });
            const s = sse(`${fresh.url}/events`, { Authorization: `Bearer ${tok}`, 'Last-Event-ID': '1000' });
            await waitFor(() => s.frames().some((f) => f.type === 'resync'), 'SSE resync');
            assert.equal(s.recs.find((r) => r.f.type === 'resync').id, '0');
            const n = notification(user, 1);
            await fresh.publish([n]);
            assert.equal((await c.waitEvents(1))[0].id, n.notification_id);
            await waitFor(() => s.events().length === 1, 'the SSE event');
            assert.equal(s.events()[0].id, n.notification_id);
            s.es.close();
            await c.close();
          } finally {
            assert.equal((await fresh.stop()).code, 0);
          }
        });
      }
    });

    describe('inbox API and read receipts', () => {
      test('list, unread count, mark read (pushed to other connections), read all', async () => {
        const tok = await userToken(u('ib'));
        const h = { Authorization: `Bearer ${tok}` };
        const ns = Array.from({ length: 5 }, (_, i) => notification(u('ib'), i));
        const watcher = await Client.open(srv.wsUrl, bearer(tok));
        await watcher.waitFrame('welcome');
        await publishEach(ns);
        // the store's order (seq) is the inbox order, newest first
        const ids = (await watcher.waitEvents(5)).map((e) => e.id).reverse();

        let r = await srv.request('GET', '/api/v1/notifications/unread-count', undefined, h);
        assert.equal(r.status, 200);
        assert.equal(r.json.unread, 5);

        r = await srv.request('GET', '/api/v1/notifications?limit=2', undefined, h);
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.notifications.map((n) => n.notification_id), ids.slice(0, 2));
        assert.equal(r.json.notifications[0].read, false);
        r = await srv.request('GET', `/api/v1/notifications?limit=2&before=${r.json.next_before}`,
          undefined, h);
        assert.deepEqual(r.json.notifications.map((n) => n.notification_id), ids.slice(2, 4));

        r = await srv.request('POST', `/api/v1/notifications/${ns[1].notification_id}/read`, undefined, h);
        assert.equal(r.status, 200);
        const read = await watcher.waitFrame('read');
        assert.equal(read.id, ns[1].notification_id);
        r = await srv.request('GET', '/api/v1/notifications/unread-count', undefined, h);
        assert.equal(r.json.unread, 4);
        r = await srv.request('GET', '/api/v1/notifications?unread=true', undefined, h);
        assert.equal(r.json.notifications.length, 4);
        assert.ok(!r.json.notifications.some((n) => n.notification_id === ns[1].notification_id));

        // ack over the WebSocket tells the user's other connections
        const second = await Client.open(srv.wsUrl, bearer(tok));
        await second.waitFrame('welcome');
        second.send({ type: 'ack', id: ns[2].notification_id });
        await waitFor(() => watcher.frames.filter((f) => f.type === 'read').length >= 2, 'ack read');
        assert.ok(!second.frames.some((f) => f.type === 'read'), 'not echoed to the acking socket');
        second.send({ type: 'ack', id: 'no-such-id' });
        assert.equal((await second.waitFrame('error')).code, 'not_found');
        r = await srv.request('GET', '/api/v1/notifications/unread-count', undefined, h);
        assert.equal(r.json.unread, 3);

        r = await srv.request('POST', '/api/v1/notifications/read-all', undefined, h);
        assert.equal(r.status, 200);
        assert.equal(r.json.up_to, watcher.events().at(-1).seq);
        await waitFor(() => watcher.frames.some((f) => f.type === 'read' && f.all), 'read-all frame');
        r = await srv.request('GET', '/api/v1/notifications/unread-count', undefined, h);
        assert.equal(r.json.unread, 0);
        r = await srv.request('GET', '/api/v1/notifications', undefined, h);
        assert.ok(r.json.notifications.every((n) => n.read === true));

        // someone else's notification is not in this inbox; no token is 401; bad params are 400
        const [foreign] = [notification(u('other-user'), 1)];
        await srv.publish([foreign]);
        r = await srv.request('POST', `/api/v1/notifications/${foreign.notification_id}/read`, undefined, h);
        assert.equal(r.status, 404);
        r = await srv.request('GET', '/api/v1/notifications');
        assert.equal(r.status, 401);
        // cut at the %00, 'unread=true%00x' would be unread=true
        for (const q of ['limit=0', 'limit=abc', 'before=-1', 'before=x', 'unread=maybe', 'unread=',
          'unread=true%00x', 'unread=0%00', 'limit=5%00x']) {
          r = await srv.request('GET', `/api/v1/notifications?${q}`, undefined, h);
          assert.equal(r.status, 400, q);
          assert.equal(r.json.error.status, 'INVALID_ARGUMENT', q);
          assert.match(r.json.error.message, new RegExp(`^${q.split('=')[0]}: `), q);
        }
        r = await srv.request('GET', '/api/v1/notifications?unread=false', undefined, h);
        assert.equal(r.status, 200);
        assert.equal(r.json.notifications.length, 5);
        r = await srv.request('GET', '/api/v1/notifications/unread-count', undefined, h);
        assert.equal(r.json.unread, 0);
        await watcher.close();
        await second.close();
      });

      test('ids with a / in them, or named like a route, are marked read through {id}/read', async () => {
        const user = u('slash');
        const tok = await userToken(user);
        const h = { Authorization: `Bearer ${tok}` };
        // SQLite starts empty each run; PostgreSQL keeps the ids of earlier runs: there, make them new
        const ids = ['a/b', 'x/read', 'read-all', 'unread-count'].map((id) =>
          backend === 'sqlite' ? id : `${RUN}-${id}`);
        const watcher = await Client.open(srv.wsUrl, bearer(tok));
        await watcher.waitFrame('welcome');
        await publishEach(ids.map((id, i) => notification(user, i, { notification_id: id })));
        await watcher.waitEvents(ids.length);

        for (const id of ids) {
          const r = await srv.request('POST', `/api/v1/notifications/${encodeURIComponent(id)}/read`,
            undefined, h);
          assert.equal(r.status, 200, `${id}: ${r.text}`);
          assert.equal(r.json.id, id);
          // pushed to the user's connection
          const read = await watcher.waitFrame((f) => f.type === 'read' && f.id === id);
          assert.equal(read.seq, r.json.seq, id);
        }
        let r = await srv.request('GET', '/api/v1/notifications', undefined, h);
        assert.deepEqual(r.json.notifications.map((n) => [n.notification_id, n.read]).sort(),
          ids.map((id) => [id, true]).sort());
        r = await srv.request('GET', '/api/v1/notifications/unread-count', undefined, h);
        assert.deepEqual(r.json, { unread: 0 });
        r = await srv.request('POST', '/api/v1/notifications/read-all', undefined, h);
        assert.equal(r.status, 200);
        assert.equal(r.json.all, true);
        await watcher.close();
      });

      test('an invalid notification is rejected and nothing else is disturbed', async () => {
        const before = await srv.metric('dr_realtime_notifications_total', 'outcome="invalid"');
        await srv.publish(['not json', { notification_type: 'x' }, { room: 'nope', user_id: 'z',
          notification_type: 'a' }]);
        await waitFor(async () =>
          (await srv.metric('dr_realtime_notifications_total', 'outcome="invalid"')) >= before + 3,
        'three invalid notifications counted');
        const c = await Client.open(srv.wsUrl, bearer(await userToken(u('fine'))));
        await c.waitFrame('welcome');
        await srv.publish([notification(u('fine'), 1)]);
        assert.equal((await c.waitEvents(1))[0].room, `user:${u('fine')}`);
        await c.close();
      });
    });
  });
}
