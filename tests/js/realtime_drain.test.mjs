// An orderly stop (SIGTERM) of an instance that is storing notifications: its clients are told
// to go (1001) at once, but what it was storing is finished first. The notifications reach the
// clients of the other instances through Redis, and a publish API request under way is answered
// with its seq, before the instance exits 0.
//
// Two instances share one PostgreSQL database and a Redis of this test's own. Only B processes
// publications (A has no route to the realtime processor), so what A's client gets can only
// have come from B through Redis. B's store is held up by taking, from another session, the
// advisory lock its notification transactions take (rt_store.c): B's store thread waits on it
// while B is told to stop, and the lock goes only once B is draining.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  needPgAndRedis,
  notification,
  startPair,
  userToken,
  waitFor,
} from './realtime-lib.mjs';

const RUN = Math.random().toString(36).slice(2, 8);
const skip = needPgAndRedis();
const SEQ_LOCK_KEY = '28273333576623473'; // rt_store.c: "drrtseq"

// A psql session holding the lock until release().
async function holdLock(db) {
  const psql = spawn('psql', [db, '-v', 'ON_ERROR_STOP=1', '-qAt'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  psql.stdout.on('data', (d) => (out += d));
  psql.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => psql.on('exit', r));
  psql.stdin.write(`SELECT pg_advisory_lock(${SEQ_LOCK_KEY});\n\\echo locked\n`);
  await waitFor(() => out.includes('locked'), `the lock (psql said: ${out})`);
  return {
    async release() {
      psql.stdin.end(`SELECT pg_advisory_unlock(${SEQ_LOCK_KEY});\n`);
      await exited;
    },
    kill: () => psql.kill('SIGKILL'),
  };
}

function sql(db, query) {
  return execFileSync('psql', [db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', query], {
    encoding: 'utf8',
  }).trim();
}

describe('orderly stop while notifications are being stored', { skip }, () => {
  let pair, a, b, db, lock;
  let bExited = null; // B's stop, once the test has begun it
  const cleanup = [];

  before(async () => {
    // info: the test waits for B's "shutting down" line
    pair = await startPair('dr-drain', { envB: { DR_LOG_LEVEL: 'info' } });
    ({ a, b, db } = pair);
  });

  after(async () => {
    for (const c of cleanup) c();
    lock?.kill();
    await pair?.stop({ checkB: false }); // the test checks how B exited
  });

  test('stored while stopping: delivered on the other instance, the publish API answered', async () => {
    const user = `erin-${RUN}`;
    const tok = await userToken(user);
    const auth = { headers: { Authorization: `Bearer ${tok}` } };
    const onA = await Client.open(a.wsUrl, auth);
    cleanup.push(() => onA.ws.terminate());
    await onA.waitFrame('welcome');
    const onB = await Client.open(b.wsUrl, auth);
    cleanup.push(() => onB.ws.terminate());
    await onB.waitFrame('welcome');

    lock = await holdLock(db);
    // through the publish API: its store transaction waits for the lock
    const direct = notification(user, 1);
    const answered = b.request('POST', '/api/v1/publish', { notifications: [direct] });
    answered.catch(() => {}); // awaited below; a failure must not go unhandled before that
    await waitFor(
      () =>
        Number(sql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")) >
        0,
      "B's store thread waiting for the lock",
    );
    // through the topic and the router: held in flight behind the first
    const routed = notification(user, 2);
    await b.publish([routed]);
    await waitFor(
      async () => (await b.metric('dr_in_flight_messages')) >= 1,
      'the routed notification in B',
    );

    bExited = b.stop(); // SIGTERM
    await waitFor(() => /shutting down/.test(b.log()), 'B to begin its stop');
    // B's clients are told to go at once, before what is under way is finished
    assert.equal((await onB.closed).code, 1001, 'B closes its client with 1001');
    assert.equal(onA.events().length, 0, 'nothing stored yet');

    await lock.release();
    lock = null;
    const r = await answered;
    assert.equal(r.status, 200, `the publish API answers while B stops: ${r.text}`);
    assert.equal(r.json.notifications.length, 1);
    assert.equal(r.json.notifications[0].notification_id, direct.notification_id);
    assert.ok(r.json.notifications[0].seq > 0, 'with its seq');
    assert.equal(r.json.notifications[0].duplicate, false);

    const events = await onA.waitEvents(2, 15000).catch((e) => {
      // what each instance did, for the next one to read this
      e.message += `\ngot ${JSON.stringify(onA.events())}\nB: ${b.log().slice(-3000)}` +
        `\nA: ${a.log().slice(-2000)}`;
      throw e;
    });
    assert.deepEqual(
      new Set(events.map((e) => e.id)),
      new Set([direct.notification_id, routed.notification_id]),
      `A's client gets both through Redis (got ${JSON.stringify(events)})`,
    );
    assert.equal(events.length, 2, 'each once');
    assert.ok(events[1].seq > events[0].seq, 'in seq order');
    assert.equal(events.find((e) => e.id === direct.notification_id).seq, r.json.notifications[0].seq);

    const rb = await bExited;
    assert.equal(rb.code, 0, `B exits 0 after its drain: ${b.log().slice(-3000)}`);
    assert.equal(
      sql(db, 'SELECT count(*) FROM rt_notifications'),
      '2',
      'both stored, once each',
    );
    assert.equal((await a.request('GET', '/healthz')).status, 200, 'A still serves');
  });
});
