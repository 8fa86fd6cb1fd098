// POST /api/v1/publish: notifications stored then fanned out without the router, answered with
// their seqs once committed; in seq order with the ones routed from client-notifications; a
// notification_id published again is a duplicate and not delivered twice; bad input is a 400
// naming the index and stores nothing; API keys as for the publish API.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';
import { Client, notification, startServer, userToken, waitFor } from './realtime-lib.mjs';

const RUN = Math.random().toString(36).slice(2, 8);
const u = (name) => `${name}-${RUN}`;
const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });

describe('publish API', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    const r = await srv.stop();
    assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
  });
  const publish = (body) => srv.request('POST', '/api/v1/publish', body);

  test('stored, answered with seqs, delivered once over WebSocket and SSE', async (t) => {
    const user = u('pa');
    const tok = await userToken(user);
    const ws = await Client.open(srv.wsUrl, bearer(tok));
    t.after(() => ws.close()); // also when an assertion fails, so nothing keeps the test alive
    await ws.waitFrame('welcome');
    const sse = [];
    const es = new EventSource(`${srv.url}/events`, bearer(tok));
    t.after(() => es.close());
    es.onmessage = (m) => sse.push(JSON.parse(m.data));
    await waitFor(() => sse.some((f) => f.type === 'welcome'), 'SSE welcome');

    const list = Array.from({ length: 5 }, (_, i) => notification(user, i));
    const r = await publish({ notifications: list });
    assert.equal(r.status, 200, r.text);
    const out = r.json.notifications;
    assert.deepEqual(out.map((o) => o.notification_id), list.map((n) => n.notification_id));
    assert.ok(out.every((o) => o.duplicate === false));
    for (let i = 1; i < out.length; i++) assert.ok(out[i].seq > out[i - 1].seq, 'seqs in order');

    const evs = await ws.waitEvents(5);
    assert.deepEqual(evs.map((e) => e.seq), out.map((o) => o.seq));
    assert.deepEqual(evs.map((e) => e.id), list.map((n) => n.notification_id));
    assert.equal(evs[2].data.data.i, 2);
    await waitFor(() => sse.filter((f) => f.type === 'event').length >= 5, 'SSE events');
    assert.deepEqual(sse.filter((f) => f.type === 'event').map((e) => e.seq),
      out.map((o) => o.seq));

    // the same ids again: duplicates with their first seqs, nothing delivered again
    const again = await publish({ notifications: list.slice(0, 2) });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.notifications.map((o) => [o.seq, o.duplicate]),
      out.slice(0, 2).map((o) => [o.seq, true]));
    // routed through client-notifications (answered once queued: wait for its delivery), then
    // published here: one seq order for both
    await srv.publish([notification(user, 10)]);
    const routed = (await ws.waitEvents(6))[5];
    const after = await publish({ notifications: [notification(user, 11)] });
    const direct = (await ws.waitEvents(7))[6];
    assert.ok(routed.seq > out[4].seq && direct.seq > routed.seq);
    assert.equal(direct.seq, after.json.notifications[0].seq);
    await sleepFrames(ws);
    assert.equal(ws.events().length, 7, 'nothing delivered twice');
  });

  test('a notification without an id gets one that sorts by time', async () => {
    const user = u('pb');
    const n = notification(user, 1);
    delete n.notification_id;
    const t0 = Date.now();
    const r = await publish({ notifications: [n] });
    const t1 = Date.now();
    assert.equal(r.status, 200, r.text);
    const id = r.json.notifications[0].notification_id;
    assert.match(id, /^[0-9a-f]{32}$/);
    // the milliseconds it was made at, then random bits: the store's b-tree of ids grows at its end
    const ms = parseInt(id.slice(0, 12), 16);
    assert.ok(ms >= t0 && ms <= t1, `${id} made at ${ms}, not within ${t0}..${t1}`);
  });

  // small bodies are read on the loop thread, large ones (over 16 KiB) on the thread pool
  test('a large request is stored and delivered like a small one', async (t) => {
    const user = u('pl');
    const ws = await Client.open(srv.wsUrl, bearer(await userToken(user)));
    t.after(() => ws.close());
    await ws.waitFrame('welcome');
    const list = Array.from({ length: 60 }, (_, i) => {
      const n = notification(user, i);
      n.data.pad = 'p'.repeat(400);
      return n;
    });
    assert.ok(JSON.stringify({ notifications: list }).length > 16 * 1024);
    const r = await publish({ notifications: list });
    assert.equal(r.status, 200, r.text);
    const out = r.json.notifications;
    assert.deepEqual(out.map((o) => o.notification_id), list.map((n) => n.notification_id));
    for (let i = 1; i < out.length; i++) assert.ok(out[i].seq > out[i - 1].seq, 'seqs in order');
    const evs = await ws.waitEvents(60);
    assert.deepEqual(evs.map((e) => e.seq), out.map((o) => o.seq));
    assert.equal(evs[59].data.data.pad.length, 400);
  });

  // Most bodies are read by a fast reader; one it leaves (escapes, spaces, a member it does not
  // know, numbers not written as cJSON writes them) is read through a JSON tree. The stored
  // notification and the frame sent are the same byte for byte either way.
  test('a notification is stored the same however its JSON is written', async (t) => {
    const user = u('ps');
    const ws = await Client.open(srv.wsUrl, bearer(await userToken(user)));
    t.after(() => ws.close());
    const raw = [];
    ws.ws.on('message', (d) => raw.push(d.toString()));
    await ws.waitFrame('welcome');
    const n = notification(user, 1, {
      data: { i: 1, n: [1.5, 2000, 0.1, true, null], s: 'é/<>' },
      timestamp: '2026-11-27T10:00:00.5+01:00',
    });
    const plain = JSON.stringify({ notifications: [n] });
    const spelled = JSON.stringify({ notifications: [{ ...n, notification_id: `${n.notification_id}-b` }],
      trace: 'x' }, null, 2)
      .replace('"m1"', '"\\u006d1"')
      .replace('"é/<>"', '"\\u00e9\\/<>"')
      .replace('2000', '2e3')
      .replace('1.5', '15E-1');
    assert.notEqual(spelled.replace(/\s/g, ''), plain);
    for (const body of [plain, spelled]) {
      const r = await publish(Buffer.from(body));
      assert.equal(r.status, 200, r.text);
    }
    const evs = await ws.waitEvents(2);
    assert.equal(evs[1].id, `${n.notification_id}-b`);
    const frames = raw.filter((f) => f.includes('"type":"event"'));
    assert.equal(frames.length, 2);
    const same = (f, e) => f.replaceAll(e.id, 'ID').replaceAll(`"seq":${e.seq}`, '"seq":S');
    assert.equal(same(frames[1], evs[1]), same(frames[0], evs[0]));
    assert.ok(frames[0].includes('"n":[1.5,2000,0.1,true,null],"s":"é/<>"'), frames[0]);
  });

  test('bad input: 400 naming the index, nothing stored', async () => {
    const user = u('pc');
    const good = notification(user, 1);
    const cases = [
      [{}, /notifications/],
      [{ notifications: [] }, /1 to 1000/],
      [{ notifications: 'x' }, /notifications/],
      [{ notifications: [good, 7] }, /notifications\[1\]: not a JSON object/],
      [{ notifications: [{ ...good, data: { big: 'x'.repeat(300 * 1024) } }] },
        /notifications\[0\]: notification too large/],
      [{ notifications: [good, { ...good, notification_id: 'x2', room: 'bogus:room' }] },
        /notifications\[1\]/],
      [{ notifications: [{ ...good, notification_type: 'no spaces allowed' }] },
        /notifications\[0\]/],
      [{ notifications: Array.from({ length: 1001 }, (_, i) => notification(user, i)) },
        /1 to 1000/],
    ];
    const before = await srv.metric('dr_realtime_notifications_total', 'outcome="stored"');
    for (const [body, re] of cases) {
      const r = await publish(body);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.match(r.json.error.message, re);
    }
    // a JSON string, not an object
    const str = await srv.request('POST', '/api/v1/publish', '{"notifications":[');
    assert.equal(str.status, 400);
    // hostile bodies read on the loop thread (under 16 KiB) and on the pool: deep nesting,
    // a NUL inside a string
    for (const depth of [6000, 200000]) { // 12 KB and 400 KB
      const deep = `{"notifications":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const r = await srv.request('POST', '/api/v1/publish', deep);
      assert.equal(r.status, 400, `nesting ${depth}`);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    }
    const nul = await srv.request('POST', '/api/v1/publish',
      `{"notifications":[${JSON.stringify({ ...good, title: 'a\u0000b' })}]}`);
    assert.equal(nul.status, 400, nul.text);
    assert.equal(await srv.metric('dr_realtime_notifications_total', 'outcome="stored"'), before);
    const get = await srv.request('GET', '/api/v1/publish');
    assert.equal(get.status, 405);
  });

  // A WebSocket client fails the connection on a text frame that is not UTF-8, and each resume
  // would send that notification again; cJSON cuts a string short at \u0000; bytes after the
  // JSON would be ignored unseen. Each is a 400 naming the notification, before anything is
  // stored, and the next good notification is delivered as usual.
  test('invalid text or bytes after the JSON: 400, nothing stored or delivered', async (t) => {
    const user = u('pt');
    const tok = await userToken(user);
    const ws = await Client.open(srv.wsUrl, bearer(tok));
    t.after(() => ws.close());
    await ws.waitFrame('welcome');
    const unread = async () => (await srv.request('GET', '/api/v1/notifications/unread-count',
      undefined, { Authorization: `Bearer ${tok}` })).json.unread;
    const n = (i, extra) => notification(user, i, extra);
    // the JSON of list with the raw bytes of bad (latin1: one byte a character) for "BAD"
    const body = (list, bad) => {
      const [head, tail] = JSON.stringify({ notifications: list }).split('"BAD"');
      return Buffer.concat([Buffer.from(head), Buffer.from(bad, 'latin1'), Buffer.from(tail)]);
    };
    const padded = Array.from({ length: 60 },
      (_, i) => n(100 + i, { data: { pad: 'p'.repeat(400) } }));
    padded[59].title = 'BAD';
    const cases = [
      [body([n(1), n(2, { title: 'BAD' })], '"bad \xff\xfe title"'),
        /^notifications\[1\]: invalid UTF-8$/],
      [body([n(3, { data: { k: 'BAD' } })], '"caf\xc3"'), /^notifications\[0\]: invalid UTF-8$/],
      [body([n(4, { data: { BAD: 1 } })], '"\xed\xa0\x80"'), /^notifications\[0\]: invalid UTF-8$/],
      [body(padded, '"\xc0\xaf"'), /^notifications\[59\]: invalid UTF-8$/], // read on the pool
      [body([n(5), n(6, { title: 'BAD' })], '"Hello\\u0000 hidden"'),
        /^notifications\[1\]: strings must not contain U\+0000$/],
      [Buffer.from(`${JSON.stringify({ notifications: [n(7)] })}garbage`),
        /unexpected data after the JSON object/],
      [Buffer.from(`${JSON.stringify({ notifications: [n(8)] })}\n{}`),
        /unexpected data after the JSON object/],
    ];
    const before = await srv.metric('dr_realtime_notifications_total', 'outcome="stored"');
    for (const [b, re] of cases) {
      const r = await publish(b);
      assert.equal(r.status, 400, `${r.text} for ${b.toString('latin1').slice(0, 120)}`);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.match(r.json.error.message, re);
    }
    assert.equal(await srv.metric('dr_realtime_notifications_total', 'outcome="stored"'), before);
    assert.equal(await unread(), 0);

    // an escaped backslash before the text u0000 is text; whitespace after the JSON is fine
    const good = n(9, { title: 'Hello\\u0000 kept' });
    const r = await publish(Buffer.from(`${JSON.stringify({ notifications: [good] })} \r\n`));
    assert.equal(r.status, 200, r.text);
    const evs = await ws.waitEvents(1);
    await sleepFrames(ws);
    assert.equal(ws.closeInfo, null);
    assert.deepEqual(ws.events().map((e) => e.id), [good.notification_id]);
    assert.equal(evs[0].data.title, 'Hello\\u0000 kept');
    assert.equal(await unread(), 1);
  });
});

describe('publish API with API keys', () => {
  let srv;
  const key = 'pk-' + crypto.randomBytes(12).toString('hex');
  before(async () => {
    const sha = crypto.createHash('sha256').update(key).digest('hex');
    srv = await startServer({
      edit: (y) => `${y}\napi_keys:\n  - {name: backend, role: service, sha256: ${sha}}\n`,
    });
  });
  after(async () => {
    await srv.stop();
  });

  test('needs a service key', async () => {
    const body = { notifications: [notification(u('pd'), 1)] };
    const none = await srv.request('POST', '/api/v1/publish', body);
    assert.equal(none.status, 401, none.text);
    const bad = await srv.request('POST', '/api/v1/publish', body, { 'X-API-Key': 'nope' });
    assert.ok([401, 403].includes(bad.status), bad.text);
    const ok = await srv.request('POST', '/api/v1/publish', body, { 'X-API-Key': key });
    assert.equal(ok.status, 200, ok.text);
  });
});

async function sleepFrames(ws) {
  await new Promise((r) => setTimeout(r, 200));
  return ws;
}
