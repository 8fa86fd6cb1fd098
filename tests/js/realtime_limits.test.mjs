// WebSocket protocol edges and limits: size cap (1009), invalid UTF-8 (1007), binary (1003),
// fragmentation, ping/pong, the close handshake, the message rate (1008), and a slow consumer
// closed with 4008 that resumes without loss. Limits are small so nothing depends on timing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  notification,
  startServer,
  userToken,
  waitFor,
} from './realtime-lib.mjs';

let srv;

before(async () => {
  srv = await startServer({
    realtime: {
      max_frame_bytes: 1024,
      max_queue_bytes: 16384,
      send_buffer: 4096,
      rate: 5,
      burst: 10,
      heartbeat: '150ms',
      catchup_page: 50,
    },
  });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `clean exit expected: ${srv.log().slice(-2000)}`);
});

const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });

async function connect(sub) {
  const c = await Client.open(srv.wsUrl, bearer(await userToken(sub)));
  await c.waitFrame('welcome');
  return c;
}

describe('protocol', () => {
  test('a message over max_frame_bytes closes with 1009', async () => {
    const c = await connect('big');
    c.send({ type: 'ping', pad: 'x'.repeat(2000) });
    assert.equal((await c.closed).code, 1009);
  });

  test('a fragmented message over the cap closes with 1009 too', async () => {
    const c = await connect('bigfrag');
    for (let i = 0; i < 3; i++) c.ws.send('y'.repeat(500), { fin: false });
    c.ws.send('}', { fin: true });
    assert.equal((await c.closed).code, 1009);
  });

  test('invalid UTF-8 in a text frame closes with 1007', async () => {
    const c = await connect('utf');
    c.ws.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false });
    assert.equal((await c.closed).code, 1007);
    const d = await connect('utf2');
    d.ws.send(Buffer.from([0xc0, 0xaf]), { binary: false }); // overlong '/'
    assert.equal((await d.closed).code, 1007);
  });

  test('binary frames close with 1003', async () => {
    const c = await connect('bin');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await c.closed).code, 1003);
  });

  test('fragmented messages are reassembled; valid UTF-8 passes', async () => {
    const c = await connect('frag');
    c.ws.send('{"type":', { fin: false });
    c.ws.send('"ping","note":"héllo ✓"', { fin: false });
    c.ws.send('}', { fin: true });
    assert.equal((await c.waitFrame('pong')).type, 'pong');
    c.send('not json');
    assert.equal((await c.waitFrame('error')).code, 'invalid_message');
    await c.close();
  });

  test('server pings; client close handshake is answered', async () => {
    const c = await connect('pinged');
    await new Promise((resolve) => c.ws.once('ping', resolve));
    c.ws.close(1000, 'bye');
    const { code } = await c.closed;
    assert.equal(code, 1000);
  });

  test('malformed control frames close with 1002', async () => {
    // client frames written raw: masked with a zero key, so the payload goes as it is
    const frame = (b0, payload) =>
      Buffer.concat([Buffer.from([b0, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
    const cases = {
      'fragmented ping': frame(0x09, Buffer.from('ab')),
      'ping over 125 bytes': frame(0x89, Buffer.alloc(126, 0x61)),
      'close with a one-byte body': frame(0x88, Buffer.from([3])),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const c = await connect('ctl');
      c.ws._socket.write(bytes);
      assert.equal((await c.closed).code, 1002, name);
    }
    const d = await connect('ctl');
    d.send({ type: 'ping' });
    assert.equal((await d.waitFrame('pong')).type, 'pong');
    await d.close();
  });

  test('over the message rate closes with 1008', async () => {
    const c = await connect('chatty');
    for (let i = 0; i < 40; i++) c.send({ type: 'ping' });
    assert.equal((await c.closed).code, 1008);
  });

  test('WebSocket pings count against the message rate', async () => {
    const c = await connect('pinger');
    for (let i = 0; i < 40; i++) c.ws.ping();
    await waitFor(() => c.closeInfo, 'the close');
    assert.equal(c.closeInfo.code, 1008);
  });
});

describe('pongs to a client that does not read', () => {
  let fast;
  before(async () => {
    // a rate that lets a ping flood through: only the outbound queue's bound stops it
    fast = await startServer({
      realtime: { max_queue_bytes: 16384, send_buffer: 4096, rate: 100000, burst: 100000 },
    });
  });
  after(async () => {
    const r = await fast.stop();
    assert.equal(r.code, 0, `clean exit expected: ${fast.log().slice(-2000)}`);
  });

  // Pings with the largest payload while not reading: each pong waits in the server's queue.
  // Returns the pongs received once reading again, and how the connection ended (null: open).
  async function flood(c, pings) {
    const before = await fast.metric('dr_realtime_slow_client_closes_total');
    let pongs = 0;
    c.ws.on('pong', () => pongs++);
    c.ws._socket.pause();
    const payload = Buffer.alloc(125, 0x70);
    for (let i = 0; i < pings && !c.closeInfo; i++) {
      c.ws.ping(payload);
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    await waitFor(
      async () => (await fast.metric('dr_realtime_slow_client_closes_total')) > before,
      'the client to be closed as slow',
      30000,
    );
    c.ws._socket.resume();
    await c.closed;
    return { pongs, closed: c.closeInfo };
  }

  test('authenticated: closed with 4008, the queue stays bounded', async () => {
    const c = await Client.open(fast.wsUrl, bearer(await userToken('pf1')));
    await c.waitFrame('welcome');
    const { pongs, closed } = await flood(c, 200000);
    assert.equal(closed.code, 4008);
    assert.ok(pongs < 200000, `closed before every pong was sent (${pongs})`);
  });

  test('before the auth message: closed with 4008 as well', async () => {
    const c = await Client.open(fast.wsUrl);
    const { closed } = await flood(c, 200000);
    assert.equal(closed.code, 4008);
  });
});

describe('backpressure', () => {
  test('a slow consumer is closed with 4008, resumes with since, loses nothing', async () => {
    const before = await srv.metric('dr_realtime_slow_client_closes_total');
    const c = await connect('slow');
    c.ws._socket.pause(); // stop reading: the kernel buffers fill, then the outbound queue
    const all = Array.from({ length: 300 }, (_, i) =>
      notification('slow', i, { data: { i, pad: 'z'.repeat(2000) } }),
    );
    for (let i = 0; i < all.length; i += 50) await srv.publish(all.slice(i, i + 50));
    await waitFor(
      async () => (await srv.metric('dr_realtime_slow_client_closes_total')) > before,
      'the slow client to be closed',
    );

    // meanwhile another client is served normally
    const fast = await connect('fast');
    await srv.publish([notification('fast', 1)]);
    assert.equal((await fast.waitEvents(1))[0].room, 'user:fast');
    await fast.close();

    c.ws._socket.resume();
    const { code } = await c.closed;
    assert.equal(code, 4008);
    const got = c.events();
    assert.ok(got.length < all.length, `closed before everything was sent (${got.length})`);
    const last = got.length ? got.at(-1).seq : 0;

    const r = await Client.open(`${srv.wsUrl}?since=${last}`, bearer(await userToken('slow')));
    const rest = await r.waitEvents(all.length - got.length, 30000);
    const evs = [...got, ...rest];
    const ids = evs.map((e) => e.id);
    assert.equal(ids.length, all.length);
    assert.deepEqual(new Set(ids), new Set(all.map((n) => n.notification_id)), 'no gap');
    for (let i = 1; i < evs.length; i++) assert.ok(evs[i].seq > evs[i - 1].seq, 'seq order');
    await r.close();
  });
});
