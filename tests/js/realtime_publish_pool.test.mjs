// POST /api/v1/publish holds no thread of the pool while its notifications wait for the store:
// with a pool of one thread and the store's write lock held from outside, an inbox query (which
// needs the pool) is answered while every publish is still waiting; once the lock is released
// the publishes are answered with their seqs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { notification, startServer, userToken } from './realtime-lib.mjs';

const RUN = Math.random().toString(36).slice(2, 8);

describe('publish API and the thread pool', () => {
  let srv;
  before(async () => {
    srv = await startServer({ env: { UV_THREADPOOL_SIZE: '1' } });
  });
  after(async () => {
    const r = await srv.stop();
    assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
  });

  test('an inbox query is answered while publishes wait for the store', async (t) => {
    const user = `pool-${RUN}`;
    const auth = { Authorization: `Bearer ${await userToken(user)}` };
    const first = await srv.request('POST', '/api/v1/publish',
      { notifications: [notification(user, 100)] });
    assert.equal(first.status, 200, first.text);

    // the write lock, held by another process until COMMIT
    const lock = spawn('sqlite3', [path.join(srv.dir, 'data-router.db')],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    t.after(() => lock.kill());
    const held = new Promise((resolve) => lock.stdout.once('data', resolve));
    lock.stdin.write('BEGIN IMMEDIATE;\nSELECT 1;\n');
    await held;

    const answered = [];
    const pubs = [0, 1, 2, 3].map((i) => srv.request('POST', '/api/v1/publish',
      { notifications: [notification(user, i)] }).then((r) => {
      answered.push(`publish ${i}`);
      return r;
    }));
    // round trips on the loop alone: the publishes ahead of them have been read and handed to
    // the pool by then
    for (let i = 0; i < 5; i++) assert.equal((await srv.request('GET', '/healthz')).status, 200);
    const inbox = await srv.request('GET', '/api/v1/notifications?limit=5', undefined, auth);
    answered.push('inbox');
    assert.equal(inbox.status, 200, inbox.text);
    assert.deepEqual(answered, ['inbox'], 'the inbox waited behind a publish');

    lock.stdin.end('COMMIT;\n');
    for (const [i, r] of (await Promise.all(pubs)).entries()) {
      // a machine slow enough to outlast the store's busy timeout (5 s) answers 503: again
      const res = r.status === 503 ? await srv.request('POST', '/api/v1/publish',
        { notifications: [notification(user, i)] }) : r;
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.notifications[0].seq > first.json.notifications[0].seq);
    }
  });
});
