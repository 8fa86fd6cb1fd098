// The resume point under a lost resync: web/data-router-client.js on instance A, which shares
// PostgreSQL and Redis with instance B. A notification is stored and never published (what an
// instance that dies between its commit and its PUBLISH leaves), and a later one reaches the
// client. Only an audit would tell the client to resync, and A's does not run before A dies
// (audit_interval: 10m). A comes back as a new process on the same port, whose audit starts at
// the store's head and never looks below it. The client gets the lost notification anyway:
// the events after it told it to resume from below it, not from their own seq.
//
// Only B processes publications (A has no route to the realtime processor).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import EventSource from 'eventsource';
import WebSocket from 'ws';
import {
  needPgAndRedis,
  notification,
  startPair,
  storeWithoutPublish,
  userToken,
  waitFor,
} from './realtime-lib.mjs';

const SRC = process.env.DR_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
const { DataRouterClient } = await import(pathToFileURL(path.join(SRC, 'web/data-router-client.js')).href);

const RUN = Math.random().toString(36).slice(2, 8);
const skip = needPgAndRedis();

// A: a missing seq given up on at once, no audit while the test runs.
const A_YAML = (y) =>
  y.replace('audit_interval: 200ms', 'audit_interval: 10m') + '  reorder_window: 20ms\n';

describe('resume point after a notification lost on the bus', { skip }, () => {
  let pair, db;
  const clients = [];

  before(async () => {
    pair = await startPair('dr-rp', { yamlA: A_YAML });
    db = pair.db;
  });

  after(async () => {
    for (const c of clients) c.close();
    await pair?.stop();
  });

  for (const transport of ['websocket', 'sse']) {
    test(`${transport}: the client resumes from below the lost seq on a new instance`, async () => {
      const user = `rp-${transport}-${RUN}`;
      const client = new DataRouterClient({
        url: pair.a.url,
        getToken: () => userToken(user),
        WebSocket,
        EventSource,
        transports: [transport],
        backoff: { initialMs: 50, maxMs: 300 },
      });
      clients.push(client);
      const events = [];
      const frames = [];
      client.on('*', (ev) => events.push(ev));
      client.on('resync', (f) => frames.push(f));
      let opens = 0;
      client.on('open', () => opens++);
      client.connect();
      await waitFor(() => opens === 1, 'the client open');

      const first = notification(user, 1);
      await pair.b.publish([first]);
      await waitFor(() => events.length === 1, 'the first notification');

      const lost = notification(user, 2);
      const lostSeq = storeWithoutPublish(db, lost);
      const third = notification(user, 3);
      await pair.b.publish([third]);
      await waitFor(() => events.length === 2, 'the notification after the lost one');
      assert.equal(events[1].id, third.notification_id);
      assert.ok(events[1].seq > lostSeq, 'stored after the lost one');
      assert.equal(events[1].resume, events[0].seq, 'resume from below the lost seq');
      assert.equal(client.lastSeq, events[1].seq);

      // A dies before any audit: no resync ever reaches this connection
      const { port, dir } = pair.a;
      pair.a.kill('SIGKILL');
      await pair.a.stop();
      await waitFor(() => client.state === 'reconnecting', 'the client to notice');
      pair.a = await pair.startA({ port, dir });

      await waitFor(() => events.length === 3, 'the lost notification after the reconnect', 20000);
      assert.equal(events[2].id, lost.notification_id);
      assert.equal(events[2].seq, lostSeq);
      assert.equal(frames.length, 0, 'no resync was needed');

      // delivery goes on; nothing arrived twice
      const fourth = notification(user, 4);
      await pair.b.publish([fourth]);
      await waitFor(() => events.length === 4, 'live delivery after the resume');
      assert.equal(events[3].id, fourth.notification_id);
      assert.deepEqual(
        events.map((e) => e.id).sort(),
        [first, lost, third, fourth].map((n) => n.notification_id).sort(),
      );
      client.close();
    });
  }
});
