// The demo dashboard: development sign-in (local mode), the inbox with live updates grouped by
// notification_type, unread count and mark-read, and watched shipments and polls. Everything
// real-time goes through data-router-client.js. Text from notifications is only ever set with
// textContent.
import { DataRouterClient, tokenExpiry } from './data-router-client.js';

const $ = (sel) => document.querySelector(sel);
const STORE_KEY = 'data-router.dashboard';
const INBOX_LIMIT = 100;

let client = null;
let session = null; // {sub, org, admin, token}
let countTimer = null;
const latest = new Map(); // watched room -> text of its newest update

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY)) ?? {};
  } catch {
    return {};
  }
}

function save(patch) {
  const s = { ...load(), ...patch };
  sessionStorage.setItem(STORE_KEY, JSON.stringify(s));
  return s;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function showMessage(text) {
  const m = $('#message');
  m.textContent = text;
  m.hidden = !text;
}

// ---- sign-in ----

async function devToken({ sub, org, admin }) {
  const res = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(org ? { sub, org, admin } : { sub, admin }),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const why = body?.error?.message || `HTTP ${res.status}`;
    throw new Error(
      res.status === 404 ? 'development sign-in is off (not local mode, or JWT keys are set)' : why,
    );
  }
  return body.token;
}

async function getToken({ refresh }) {
  const exp = tokenExpiry(session.token);
  if (refresh || !session.token || (exp && exp * 1000 < Date.now() + 60000)) {
    session.token = await devToken(session);
    save({ token: session.token });
  }
  return session.token;
}

async function signIn(ev) {
  ev.preventDefault();
  const err = $('#signin-error');
  err.hidden = true;
  const sub = $('#sub').value.trim();
  const org = $('#org').value.trim();
  const admin = $('#admin').checked;
  try {
    const token = await devToken({ sub, org, admin });
    session = save({ sub, org, admin, token, rooms: [] });
    await start();
  } catch (e) {
    err.textContent = `Sign-in failed: ${e.message}`;
    err.hidden = false;
  }
}

function signOut() {
  client?.close();
  client = null;
  sessionStorage.removeItem(STORE_KEY);
  location.reload();
}

// ---- connection status ----

function setStatus(state, detail = '') {
  const s = $('#status');
  s.dataset.state = state;
  s.dataset.transport = client?.transport ?? '';
  const labels = {
    idle: 'not connected',
    connecting: 'connecting…',
    open: `live · ${client?.transport === 'sse' ? 'SSE' : 'WebSocket'}`,
    reconnecting: 'reconnecting…',
    closed: 'disconnected',
  };
  s.textContent = detail || labels[state] || state;
}

function updateFoot() {
  $('#foot-info').textContent = client
    ? `last seq ${client.lastSeq} · ${client.transport ?? '–'}`
    : '';
}

// ---- inbox ----

const isInboxRoom = (room) => room?.startsWith('user:') || room?.startsWith('org:');
// The server's inbox holds a notification addressed to the user in any room (a shipment's or a
// poll's too), not only those of user: and org: rooms; the unread badge counts them all.
const inInbox = (n) => n.user_id === session.sub || isInboxRoom(n.room);

function sectionFor(type) {
  const sections = $('#sections');
  let sec = sections.querySelector(`section[data-type="${CSS.escape(type)}"]`);
  if (sec) return sec;
  sec = el('section', 'group');
  sec.dataset.type = type;
  const h = el('h3', null, type);
  h.append(' ', el('span', 'count', '0'));
  sec.append(h, el('ul', 'items'));
  // sections in alphabetical order of their type
  const after = [...sections.children].find((s) => s.dataset.type > type);
  sections.insertBefore(sec, after ?? null);
  return sec;
}

function renderItem(n, read) {
  const li = el('li', 'item');
  li.dataset.seq = String(n.seq);
  li.dataset.id = n.notification_id;
  li.dataset.type = n.notification_type;
  li.dataset.room = n.room ?? '';
  li.dataset.read = String(Boolean(read));
  li.dataset.inbox = String(inInbox(n));
  const head = el('div', 'item-head');
  head.append(el('strong', 'title', n.title || n.notification_type));
  const meta = el('span', 'meta');
  const when = n.timestamp ? new Date(n.timestamp) : null;
  meta.textContent = `${n.room ?? ''} · ${when && !isNaN(when) ? when.toLocaleTimeString() : ''} · #${n.seq}`;
  head.append(meta);
  li.append(head);
  if (n.message) li.append(el('p', 'message', n.message));
  if (inInbox(n)) {
    const b = el('button', 'ghost small mark', 'Mark read');
    b.type = 'button';
    b.addEventListener('click', () => markRead(n.notification_id));
    li.append(b);
  }
  return li;
}

function addNotification(n, read = false) {
  const sec = sectionFor(n.notification_type);
  const ul = sec.querySelector('ul');
  const li = renderItem(n, read);
  // newest first
  const after = [...ul.children].find((c) => Number(c.dataset.seq) < n.seq);
  ul.insertBefore(li, after ?? null);
  sec.querySelector('.count').textContent = String(ul.children.length);
  $('#inbox-empty').hidden = true;
  if (!read) {
    li.classList.add('fresh');
    setTimeout(() => li.classList.remove('fresh'), 1500);
  }
}

function setRead(pred) {
  for (const li of document.querySelectorAll('#sections li.item')) {
    if (pred(li)) li.dataset.read = 'true';
  }
}

function refreshUnread() {
  clearTimeout(countTimer);
  countTimer = setTimeout(async () => {
    try {
      $('#unread').textContent = String(await client.unreadCount());
    } catch (e) {
      showMessage(`unread count: ${e.message}`);
    }
  }, 100);
}

async function markRead(id) {
  setRead((li) => li.dataset.id === id);
  try {
    await client.ack(id);
  } catch (e) {
    showMessage(`mark read: ${e.message}`);
  }
  refreshUnread();
}

async function markAllRead() {
  try {
    const r = await client.markAllRead();
    setRead((li) => li.dataset.inbox === 'true' && Number(li.dataset.seq) <= r.up_to);
  } catch (e) {
    showMessage(`mark all read: ${e.message}`);
  }
  refreshUnread();
}

function removeItem(li) {
  const sec = li.closest('section');
  li.remove();
  const n = sec.querySelector('ul').children.length;
  if (n) sec.querySelector('.count').textContent = String(n);
  else sec.remove();
  $('#inbox-empty').hidden = Boolean($('#sections li.item'));
}

// What the page shows of the current store for sure: the ids delivered on the current
// connection, and those the inbox API listed after a reset during it.
const liveNow = new Set();
const reloaded = new Set();
let reloads = 0;

// A resync with reset: the store no longer holds what the connection resumed from (it was reset
// or restored from a backup), so the notifications on the page from before this connection are
// gone from it and their seqs name others now. Shows what the store holds instead. The server
// sends one for the rooms of the connection and one for each room subscribed after: what this
// connection delivered in between stays. A notification may come both live and from the inbox
// API while that is read: whichever comes second is not shown again.
async function reloadInbox() {
  const gen = ++reloads;
  for (const li of document.querySelectorAll('#sections li.item')) {
    if (!liveNow.has(li.dataset.id) && !reloaded.has(li.dataset.id)) removeItem(li);
  }
  const list = await client.listNotifications({ limit: INBOX_LIMIT });
  if (gen !== reloads) return; // a later reset reads it again
  for (const n of list.notifications.slice().reverse()) {
    if ($(`li.item[data-id="${CSS.escape(n.notification_id)}"]`)) continue; // came live
    addNotification(n, n.read);
    reloaded.add(n.notification_id);
  }
  refreshUnread();
  updateFoot();
}

// ---- watched rooms ----

function renderRooms() {
  const ul = $('#rooms');
  ul.replaceChildren();
  for (const room of client.subscriptions) {
    const li = el('li', 'room');
    li.dataset.room = room;
    const [kind, id] = [room.slice(0, room.indexOf(':')), room.slice(room.indexOf(':') + 1)];
    li.append(el('span', `kind ${kind}`, kind === 'shipment' ? 'Shipment' : 'Poll'));
    li.append(el('span', 'rid', id));
    li.append(el('span', 'latest', latest.get(room) ?? 'waiting for updates…'));
    const b = el('button', 'ghost small', 'Unwatch');
    b.type = 'button';
    b.addEventListener('click', () => {
      client.unsubscribe(room);
      save({ rooms: client.subscriptions });
      renderRooms();
    });
    li.append(b);
    ul.append(li);
  }
  $('#rooms-empty').hidden = client.subscriptions.length > 0;
}

function roomLatest(room, n) {
  latest.set(room, `${n.title || n.notification_type} · #${n.seq}`);
  const li = $(`#rooms li[data-room="${CSS.escape(room)}"]`);
  if (li) li.querySelector('.latest').textContent = latest.get(room);
}

function watch(prefix) {
  return (ev) => {
    ev.preventDefault();
    const input = ev.target.elements.id;
    const id = input.value.trim();
    if (!id) return;
    client.subscribe(`${prefix}:${id}`);
    save({ rooms: client.subscriptions });
    input.value = '';
    renderRooms();
  };
}

// ---- start ----

async function start() {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').hidden = false;
  $('#signout').hidden = false;
  $('#who').textContent = session.org ? `${session.sub} @ ${session.org}` : session.sub;

  client = new DataRouterClient({ getToken, rooms: session.rooms ?? [] });
  globalThis.dataRouterClient = client; // for the console and tests
  client.on('state', ({ state }) => {
    setStatus(state);
    updateFoot();
  });
  client.on('close', ({ reconnectInMs }) => {
    setStatus('reconnecting', `reconnecting in ${(reconnectInMs / 1000).toFixed(1)} s…`);
  });
  client.on('open', () => {
    liveNow.clear();
    reloaded.clear();
    setStatus('open');
    showMessage('');
    updateFoot();
    refreshUnread();
  });
  client.on('*', (ev) => {
    liveNow.add(ev.data.notification_id);
    // one a reload took from the inbox API is on the page already
    if (!reloaded.has(ev.data.notification_id)) addNotification({ ...ev.data, seq: ev.seq }, false);
    if (client.subscriptions.includes(ev.room)) roomLatest(ev.room, ev.data);
    if (inInbox({ ...ev.data, room: ev.room })) refreshUnread();
    updateFoot();
  });
  client.on('resync', (f) => {
    if (f.reset) reloadInbox().catch((e) => showMessage(`reload after a store reset: ${e.message}`));
  });
  client.on('read', (f) => {
    if (f.all) {
      setRead((li) => li.dataset.inbox === 'true' && Number(li.dataset.seq) <= f.up_to);
    } else {
      setRead((li) => li.dataset.id === f.id);
    }
    refreshUnread();
  });
  client.on('error', (e) => {
    if (e.code === 'room_refused') {
      save({ rooms: client.subscriptions });
      renderRooms();
      showMessage(`not allowed to watch ${e.rooms.join(', ')}`);
    } else if (e.code !== 'handler_error') {
      showMessage(e.message || e.code);
    } else {
      console.error(e.error);
    }
  });

  // The stored inbox first, then everything newer live: no gap, no overlap.
  const list = await client.listNotifications({ limit: INBOX_LIMIT });
  let newest = 0;
  for (const n of list.notifications.slice().reverse()) {
    addNotification(n, n.read);
    newest = Math.max(newest, n.seq);
  }
  client.resumeFrom(newest);
  renderRooms();
  refreshUnread();
  client.connect();
}

document.addEventListener('DOMContentLoaded', () => {
  $('#signin-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#read-all').addEventListener('click', markAllRead);
  $('#watch-shipment').addEventListener('submit', watch('shipment'));
  $('#watch-poll').addEventListener('submit', watch('meeting'));
  const saved = load();
  if (saved.sub && saved.token) {
    session = saved;
    start().catch((e) => showMessage(e.message));
  }
});
