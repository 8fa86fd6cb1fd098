// The dashboard end to end in headless Chromium (Debian's chromium, driven by playwright-core):
// development sign-in, a notification published through the local publish API appears live,
// the connection is cut (a TCP proxy between browser and server drops every socket and refuses
// new ones), more are published meanwhile, and after the cut every one is on the page exactly
// once. Its Content-Security-Policy blocks a WebSocket to another origin; after the store is
// reset under it, it shows the new store's inbox. Also: how web/ is served (types, ETag, CSP, no
// traversal, no symlinks) and the dev-token endpoint's conditions.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { notification, startProxy, startServer, userToken, waitFor } from './realtime-lib.mjs';

const SRC = process.env.DR_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
const WEB = path.join(SRC, 'web');
const CHROMIUM = process.env.DR_CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.DR_SCREENSHOT || path.join(os.tmpdir(), 'dr-dashboard.png');
// Local mode without production JWT keys: development tokens on.
const DEV_ENV = { DR_JWT_SECRET: '', DR_WEB_DIR: WEB };

const cleanups = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

function note(user, i, extra) {
  return notification(user, i, { notification_type: 'shipment.updated', ...extra });
}

describe('dashboard in Chromium', { skip: !fs.existsSync(CHROMIUM) && `no ${CHROMIUM}` }, () => {
  let srv, proxy, context, page;
  let sse; // a second page without WebSocket: the dashboard on SSE

  before(async () => {
    srv = await startServer({ env: DEV_ENV });
    cleanups.push(() => srv.stop());
    proxy = await startProxy(srv.port);
    cleanups.push(() => proxy.close());
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-chromium-'));
    cleanups.push(async () => fs.rmSync(profile, { recursive: true, force: true }));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 860 },
    });
    cleanups.push(() => context.close());
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => console.error('page error:', e.message));
    // every Content-Security-Policy violation of the page, from its first script on
    await page.addInitScript(() => {
      globalThis.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        globalThis.cspViolations.push({ directive: e.effectiveDirective, blocked: e.blockedURI }),
      );
    });
  });

  // seq and id of every notification on the page
  const items = () =>
    page.$$eval('#sections li.item', (lis) =>
      lis.map((li) => ({ seq: Number(li.dataset.seq), id: li.dataset.id, read: li.dataset.read })),
    );
  const unread = () => page.textContent('#unread').then(Number);
  const waitUnread = (n) =>
    page.waitForFunction((want) => document.querySelector('#unread').textContent === String(want), n, {
      timeout: 30000,
    });
  const waitItems = (ids) =>
    page.waitForFunction(
      (want) => want.every((id) => document.querySelector(`li.item[data-id="${id}"]`)),
      ids,
      { timeout: 60000 },
    );

  test('sign in, live notifications, a cut connection, nothing lost or doubled', async () => {
    await page.goto(`${proxy.url}/`);
    assert.equal(await page.title(), 'data-router · live dashboard');
    await page.fill('#sub', 'carol');
    await page.fill('#org', 'acme');
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('#status[data-state="open"]', { timeout: 30000 });
    assert.equal(await page.textContent('#who'), 'carol @ acme');
    assert.equal(await page.getAttribute('#status', 'data-transport'), 'websocket');
    assert.deepEqual(await page.evaluate(() => globalThis.cspViolations), [], 'nothing blocked');

    // one notification, live
    const first = note('carol', 1, { title: 'Out for delivery', message: 'Parcel 1Z999 is on the van' });
    await srv.publish([first]);
    await waitItems([first.notification_id]);
    await waitUnread(1);
    const sectionTypes = await page.$$eval('#sections section', (s) => s.map((x) => x.dataset.type));
    assert.deepEqual(sectionTypes, ['shipment.updated']);

    // cut every socket between the page and the server; publish while cut
    proxy.cut();
    await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: 30000 });
    const during = [
      note('carol', 2, { title: 'Delivered', message: 'Left at the front door' }),
      note('carol', 3, {
        notification_type: 'poll.results',
        title: 'Team lunch: Thursday wins',
        message: '5 of 7 votes',
      }),
      note('carol', 4, {
        notification_type: 'poll.results',
        title: 'Offsite: results updated',
        message: '3 of 9 voted so far',
      }),
      note('carol', 5, { room: 'org:acme', notification_type: 'system.notice', title: 'Maintenance tonight' }),
    ];
    await srv.publish(during);
    assert.equal((await items()).length, 1, 'nothing arrives while cut');
    proxy.restore();
    await page.waitForSelector('#status[data-state="open"]', { timeout: 60000 });
    const all = [first, ...during].map((n) => n.notification_id);
    await waitItems(all);

    // one more after the reconnect: anything doubled would be on the page by the time it is
    const last = note('carol', 6, { title: 'Return label created', message: 'Sent to your email' });
    await srv.publish([last]);
    all.push(last.notification_id);
    await waitItems(all);

    const got = await items();
    assert.deepEqual(got.map((x) => x.id).sort(), [...all].sort(), 'each notification once');
    assert.equal(new Set(got.map((x) => x.seq)).size, got.length, 'no seq twice');
    const types = await page.$$eval('#sections section', (s) => s.map((x) => x.dataset.type));
    assert.deepEqual(types, ['poll.results', 'shipment.updated', 'system.notice']);
    await waitUnread(6);

    // mark one read, then all
    await page.click(`li.item[data-id="${first.notification_id}"] button.mark`);
    await page.waitForSelector(`li.item[data-id="${first.notification_id}"][data-read="true"]`);
    await waitUnread(5);
    await page.waitForFunction(() => !document.querySelector('li.fresh'), null, { timeout: 30000 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true, animations: 'disabled' });
    await page.click('#read-all');
    await waitUnread(0);
    assert.ok((await items()).every((x) => x.read === 'true'));

    // a reload rebuilds the page from the inbox API, still without doubles
    await page.reload();
    await page.waitForSelector('#status[data-state="open"]', { timeout: 30000 });
    await waitItems(all);
    const again = await items();
    assert.equal(again.length, all.length);
    assert.equal(await unread(), 0);
    assert.ok(!srv.log().includes('eyJ'), 'no token in the server log');
  });

  // connect-src 'self': the page's WebSocket reaches its own origin (the proxy's port) and no
  // other, here the server itself on its own port.
  test('CSP: a WebSocket to another origin is blocked', async () => {
    await page.waitForSelector('#status[data-state="open"][data-transport="websocket"]');
    const elsewhere = `ws://127.0.0.1:${srv.port}/ws`;
    const got = await page.evaluate(
      (url) =>
        new Promise((resolve) => {
          document.addEventListener('securitypolicyviolation', (e) => {
            if (e.blockedURI.startsWith(url.slice(0, url.lastIndexOf('/')))) {
              resolve({ blocked: e.effectiveDirective });
            }
          });
          const ws = new WebSocket(url);
          ws.onopen = () => {
            ws.close();
            resolve({ opened: url });
          };
        }),
      elsewhere,
    );
    assert.deepEqual(got, { blocked: 'connect-src' });
    assert.deepEqual(
      (await page.evaluate(() => globalThis.cspViolations)).map((v) => v.directive),
      ['connect-src'],
      'only that socket was blocked',
    );
    assert.equal(await page.getAttribute('#status', 'data-state'), 'open', 'the dashboard stays live');
  });

  test('watching a shipment shows its updates', async () => {
    await page.fill('#watch-shipment input[name=id]', '1Z999AA10123456784');
    await page.click('#watch-shipment button');
    const room = 'shipment:1Z999AA10123456784';
    await page.waitForSelector(`#rooms li[data-room="${room}"]`);
    await page.waitForFunction(
      (r) => globalThis.dataRouterClient.confirmed.has(r),
      room,
      { timeout: 30000 },
    );
    const n = note('dave', 1, { room, title: 'In transit: Memphis, TN' });
    await srv.publish([n]);
    await waitItems([n.notification_id]);
    await page.waitForFunction(
      (r) => document.querySelector(`#rooms li[data-room="${r}"] .latest`).textContent.includes('Memphis'),
      room,
      { timeout: 30000 },
    );
  });

  // The inbox holds what is addressed to the user in any room, and the badge counts it.
  test('an inbox notification in a shipment room can be marked read', async () => {
    const stored = note('carol', 7, { room: 'shipment:CAROL-A', title: 'Your parcel, from the inbox' });
    await srv.publish([stored]);
    await page.reload(); // the inbox API lists it
    await page.waitForSelector('#status[data-state="open"]', { timeout: 30000 });
    await waitItems([stored.notification_id]);
    await waitUnread(1);
    assert.ok(await page.$(`li.item[data-id="${stored.notification_id}"] button.mark`), 'a Mark read button');

    const room = 'shipment:CAROL-B';
    await page.fill('#watch-shipment input[name=id]', 'CAROL-B');
    await page.click('#watch-shipment button');
    await page.waitForFunction((r) => globalThis.dataRouterClient.confirmed.has(r), room, {
      timeout: 30000,
    });
    const live = note('carol', 8, { room, title: 'Your parcel, live' });
    await srv.publish([live]);
    await waitItems([live.notification_id]);
    await waitUnread(2);
    assert.ok(await page.$(`li.item[data-id="${live.notification_id}"] button.mark`), 'a Mark read button');

    await page.click('#read-all');
    await waitUnread(0);
    await page.waitForFunction(
      (ids) => ids.every((id) => document.querySelector(`li.item[data-id="${id}"]`).dataset.read === 'true'),
      [stored.notification_id, live.notification_id],
      { timeout: 30000 },
    );
  });

  // A browser's EventSource does not say why a stream failed; a 403 for a room must not look
  // like a network error retried for ever with the whole live feed down.
  test('SSE: a room the user may not watch is dropped and the live feed goes on', async () => {
    sse = await context.newPage();
    cleanups.push(() => sse.close());
    sse.on('pageerror', (e) => console.error('page error:', e.message));
    await sse.addInitScript(() => {
      delete window.WebSocket;
    });
    await sse.goto(`${proxy.url}/`);
    await sse.fill('#sub', 'frank');
    await sse.fill('#org', 'acme');
    await sse.uncheck('#admin');
    await sse.click('#signin-form button[type=submit]');
    await sse.waitForSelector('#status[data-state="open"]', { timeout: 30000 });
    assert.equal(await sse.getAttribute('#status', 'data-transport'), 'sse');

    await sse.evaluate(() => {
      globalThis.dataRouterClient.on('error', (e) => {
        if (e.code === 'room_refused') globalThis.refused = e.rooms;
      });
    });
    await sse.fill('#watch-shipment input[name=id]', 'NOT-FRANKS');
    await sse.click('#watch-shipment button');
    await sse.waitForFunction(() => globalThis.refused?.join() === 'shipment:NOT-FRANKS', null, {
      timeout: 30000,
    });
    assert.equal(await sse.$('#rooms li[data-room="shipment:NOT-FRANKS"]'), null, 'not listed');
    const saved = await sse.evaluate(() => JSON.parse(sessionStorage.getItem('data-router.dashboard')));
    assert.deepEqual(saved.rooms, [], 'not saved');
    await sse.waitForSelector('#status[data-state="open"]', { timeout: 30000 });
    const n = note('frank', 1, { title: 'Still live' });
    await srv.publish([n]);
    await sse.waitForSelector(`li.item[data-id="${n.notification_id}"]`, { timeout: 30000 });
  });

  test('SSE: a token the server no longer accepts is refreshed', async () => {
    // The inbox API shares the token and would refresh it when it meets the refusal first: hold
    // its requests until the stream has met it.
    const held = [];
    await sse.route('**/api/v1/notifications**', (route) => held.push(route));
    const seen = [];
    sse.on('response', (r) => seen.push(`${new URL(r.url()).pathname} ${r.status()}`));
    // as after a change of the server's secret: the token is valid for a while yet but refused
    await sse.evaluate(() => {
      const c = globalThis.dataRouterClient;
      const [head, payload, sig] = c.token.split('.');
      c.token = `${head}.${payload}.${'A'.repeat(sig.length)}`;
    });
    proxy.cut();
    await sse.waitForSelector('#status[data-state="reconnecting"]', { timeout: 30000 });
    proxy.restore();
    await sse.waitForSelector('#status[data-state="open"]', { timeout: 60000 });
    assert.ok(seen.includes('/events 401'), `the old token was refused: ${seen}`);
    assert.ok(seen.includes('/dev/token 200'), `a new token was fetched: ${seen}`);
    for (const route of held) await route.continue();
    await sse.unroute('**/api/v1/notifications**');
    const n = note('frank', 2, { title: 'Live again' });
    await srv.publish([n]);
    await sse.waitForSelector(`li.item[data-id="${n.notification_id}"]`, { timeout: 30000 });
  });

  // The server restarts on an empty store: the seq the dashboard resumes from is above every
  // stored one, so the server answers with a resync marked reset. What the page showed is gone
  // from the store (and its seqs name other notifications now): the page shows the new store's
  // inbox and count instead, then what comes live.
  test('after a store reset the dashboard shows what the new store holds', async () => {
    await page.waitForSelector('#status[data-state="open"]', { timeout: 30000 });
    const old = (await items()).map((x) => x.id);
    assert.ok(old.length > 0);
    const resyncs = [];
    await page.exposeFunction('sawResync', (f) => resyncs.push(f));
    await page.evaluate(() => globalThis.dataRouterClient.on('resync', (f) => globalThis.sawResync(f)));

    proxy.cut();
    await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: 30000 });
    const { port, dir } = srv;
    await srv.stop();
    for (const f of fs.readdirSync(dir)) {
      if (f.startsWith('data-router.db')) fs.rmSync(path.join(dir, f)); // the store, not the dev secret
    }
    srv = await startServer({ env: DEV_ENV, port, dir });
    cleanups.push(() => srv.stop());
    const fresh = [
      note('carol', 101, { title: 'Stored after the reset' }),
      note('carol', 102, { notification_type: 'poll.results', title: 'Also after the reset' }),
    ];
    await srv.publish(fresh);
    const since = await page.evaluate(() => globalThis.dataRouterClient.lastSeq);
    assert.ok(since > fresh.length, `the page resumes from ${since}, above the new store's seqs`);
    proxy.restore();
    await page.waitForSelector('#status[data-state="open"]', { timeout: 60000 });

    const shown = () => items().then((got) => got.map((x) => x.id).sort());
    const want = fresh.map((n) => n.notification_id);
    await page
      .waitForFunction(
        (ids) => {
          const on = [...document.querySelectorAll('#sections li.item')].map((li) => li.dataset.id);
          return on.length === ids.length && ids.every((id) => on.includes(id));
        },
        want,
        { timeout: 30000 },
      )
      .catch(() => {}); // the assertion below says what the page shows instead
    // one for the connection's rooms, one per watched room
    assert.ok(resyncs.length >= 1, 'a resync');
    assert.ok(
      resyncs.every((f) => f.reset === true && f.since === fresh.length),
      JSON.stringify(resyncs),
    );
    assert.deepEqual(await shown(), [...want].sort(), "the new store's inbox, nothing from before");
    await waitUnread(2);

    // live again, each notification once
    const live = note('carol', 103, { title: 'Live after the reset' });
    await srv.publish([live]);
    want.push(live.notification_id);
    await waitItems(want);
    assert.deepEqual(await shown(), [...want].sort());
    await waitUnread(3);
  });
});

describe('serving web/ and development tokens', () => {
  test('content types, ETag, no traversal, no symlinks out', async () => {
    const web = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-web-'));
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>t</title>');
    fs.mkdirSync(path.join(web, 'sub'));
    fs.writeFileSync(path.join(web, 'sub', 'a.js'), 'export {};');
    fs.writeFileSync(path.join(web, 'style.css'), 'body{}');
    fs.writeFileSync(path.join(web, '.secret'), 'hidden');
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-outside-'));
    fs.writeFileSync(path.join(outside, 'x.txt'), 'outside');
    fs.symlinkSync(path.join(outside, 'x.txt'), path.join(web, 'link.txt'));
    fs.symlinkSync(outside, path.join(web, 'linkdir'));
    fs.writeFileSync(path.join(web, 'big.txt'), Buffer.alloc(4 * 1024 * 1024 + 1, 97));
    const srv = await startServer({ env: { DR_WEB_DIR: web } });
    cleanups.push(() => srv.stop());

    const root = await srv.request('GET', '/');
    assert.equal(root.status, 200);
    assert.equal(root.headers['content-type'], 'text/html; charset=utf-8');
    const csp = Object.fromEntries(
      root.headers['content-security-policy'].split(';').map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values.join(' ')];
      }),
    );
    assert.equal(csp['default-src'], "'self'");
    assert.equal(csp['connect-src'], "'self'", 'WebSocket and fetch to this origin only');
    assert.equal(root.headers['x-content-type-options'], 'nosniff');
    const js = await srv.request('GET', '/web/sub/a.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.text, 'export {};');
    const css = await srv.request('GET', '/web/style.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const etag = css.headers.etag;
    assert.ok(etag);
    const cached = await srv.request('GET', '/web/style.css', undefined, { 'if-none-match': etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.text, '');

    for (const p of [
      '/web/../CMakeLists.txt',
      '/web/%2e%2e/CMakeLists.txt',
      '/web/sub/../../x',
      '/web/.secret',
      '/web/link.txt',
      '/web/linkdir/x.txt',
      '/web//etc/passwd',
      '/web/sub/',
      '/web/nope.js',
      '/web/sub%00.js',
    ]) {
      const r = await srv.request('GET', p);
      assert.equal(r.status, 404, p);
      assert.ok(!r.text.includes('outside') && !r.text.includes('hidden'), p);
    }
    const big = await srv.request('GET', '/web/big.txt');
    assert.equal(big.status, 500, 'over the size cap');
  });

  test('POST /dev/token: loopback only, accepted by the inbox API, secret kept 0600', async () => {
    let srv = await startServer({ env: DEV_ENV });
    const { port, dir } = srv;
    const mint = (s, headers) => s.request('POST', '/dev/token', { sub: 'erin', org: 'acme' }, headers);
    const r = await mint(srv);
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.json.claims.sub, 'erin');
    const auth = { authorization: `Bearer ${r.json.token}` };
    assert.equal((await srv.request('GET', '/api/v1/notifications/unread-count', undefined, auth)).status, 200);
    const st = fs.statSync(path.join(dir, 'dev-jwt-secret'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal((await mint(srv, { host: 'evil.example:80' })).status, 403, 'DNS rebinding');
    assert.equal((await srv.request('POST', '/dev/token', { sub: 'a b' })).status, 400);
    assert.equal((await srv.request('POST', '/dev/token', { sub: 'x', rooms: ['nope'] })).status, 400);
    assert.ok(!srv.log().includes(r.json.token), 'the token is not logged');

    // the same secret after a restart: the token still works
    await srv.stop();
    srv = await startServer({ env: DEV_ENV, port, dir });
    cleanups.push(() => srv.stop());
    assert.equal((await srv.request('GET', '/api/v1/notifications/unread-count', undefined, auth)).status, 200);

    // with a production secret there is no dev-token endpoint, and dev tokens are refused
    const prod = await startServer({ env: { DR_WEB_DIR: WEB } });
    cleanups.push(() => prod.stop());
    assert.equal((await mint(prod)).status, 404);
    assert.equal((await prod.request('GET', '/api/v1/notifications/unread-count', undefined, auth)).status, 401);
    const ok = { authorization: `Bearer ${await userToken('erin')}` };
    assert.equal((await prod.request('GET', '/api/v1/notifications/unread-count', undefined, ok)).status, 200);
  });
});
