// data-router real-time client: an ES module without dependencies for browsers and Node.
//
// WebSocket first (GET /ws, token in a first `auth` message), Server-Sent Events as the fallback
// (GET /events) when WebSocket is missing or fails to open. Reconnects with exponential backoff
// and jitter, resumes from where the server said it may (the `resume` of the last event or
// `resume` frame, else the last seq it delivered: `since` in `auth` and per context room in
// `subscribe` on WebSocket; Last-Event-ID and `since` on SSE) and drops anything it has
// delivered before, so the application sees every notification once. The wire protocol is
// docs/realtime-protocol.md.
//
//   const client = new DataRouterClient({ url: 'http://127.0.0.1:8080', getToken });
//   client.on('shipment.updated', (ev) => show(ev.data));  // ev: {room, seq, id, event, data}
//   client.on('*', (ev) => ...);                             // every notification
//   client.on('read', (f) => ...);                           // {id, seq} or {all: true, up_to}
//   client.on('open' | 'close' | 'error' | 'state' | 'subscribed' | 'unsubscribed', fn);
//   client.on('resync', (f) => ...);  // f.reset: the store no longer holds the seqs resumed
//                                     // from (reset, restored): reload what the app shows
//   client.connect();
//   client.subscribe('shipment:1Z999'); client.unsubscribe('shipment:1Z999');
//   await client.ack('n-1');
//
// getToken({ refresh }) returns a JWT (or a promise of one); refresh is true when the server
// refused the previous token (WebSocket close 4001, HTTP 401) or it has expired, so the
// application should fetch a new one. Tokens are never logged or put into thrown errors.

const WS_OPEN = 1;
const CLOSE_AUTH = 4001;
const CLOSE_FORBIDDEN = 4003;
const CLOSE_TOO_MANY = 4029;

const DEFAULTS = {
  transports: ['websocket', 'sse'],
  since: null, // first connection: null = live only; a seq = everything stored after it
  rooms: [], // context rooms (meeting:..., shipment:...) to subscribe at start
  backoff: { initialMs: 500, maxMs: 30000, factor: 2, jitter: 0.5 },
  openTimeoutMs: 15000, // connect + welcome deadline per attempt
  dedupWindow: 10000, // seqs remembered for duplicate suppression
  wsPath: '/ws',
  ssePath: '/events',
  apiPath: '/api/v1/notifications',
};

function b64urlJson(seg) {
  const s = seg.replace(/-/g, '+').replace(/_/g, '/');
  const pad = s.length % 4 ? '='.repeat(4 - (s.length % 4)) : '';
  const bin = typeof atob === 'function' ? atob(s + pad) : Buffer.from(s, 'base64').toString('binary');
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// Seconds since the epoch at which token expires, or null if it does not say.
export function tokenExpiry(token) {
  try {
    const exp = b64urlJson(String(token).split('.')[1]).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

// The delay before reconnect attempt n (0-based): exponential, capped, with a random part of
// `jitter` (0..1) so that many clients cut at once do not come back at once.
export function backoffDelay(n, { initialMs, maxMs, factor, jitter }, random = Math.random) {
  const base = Math.min(maxMs, initialMs * factor ** Math.min(n, 30));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

// Seqs already delivered: recent ones (each with the tag of the connection that delivered it)
// plus a floor below which all count as seen.
class SeqFilter {
  constructor(window) {
    this.window = window;
    this.seen = new Map();
    this.order = [];
    this.floor = 0;
  }

  // true the first time seq is offered. The floor stays at or below cap (the resume point):
  // a seq above it may still come, so forgetting a seen one risks a duplicate, not a loss.
  accept(seq, tag, cap = Infinity) {
    if (!(seq > this.floor) || this.seen.has(seq)) return false;
    this.seen.set(seq, tag);
    this.order.push(seq);
    if (this.order.length > this.window) {
      const old = this.order.splice(0, this.order.length - this.window);
      for (const s of old) {
        this.seen.delete(s);
        if (s > this.floor) this.floor = Math.min(s, Math.max(cap, this.floor));
      }
    }
    return true;
  }

  // Forgets the seqs above since not delivered by the connection tagged tag.
  forgetAbove(since, tag) {
    for (const [s, t] of this.seen) if (s > since && t !== tag) this.seen.delete(s);
    this.order = this.order.filter((s) => this.seen.has(s));
    if (this.floor > since) this.floor = since;
  }
}

export class DataRouterClient {
  constructor(options = {}) {
    const o = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...options.backoff } };
    if (typeof o.getToken !== 'function') throw new TypeError('getToken is required');
    const base = o.url ?? globalThis.location?.origin;
    if (!base) throw new TypeError('url is required outside a browser');
    this.opts = o;
    this.base = new URL(base);
    this.WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this.EventSource = o.EventSource ?? globalThis.EventSource;
    this.fetch = o.fetch ?? globalThis.fetch?.bind(globalThis);
    this.handlers = new Map();
    this.filter = new SeqFilter(o.dedupWindow);
    this.maxSeq = typeof o.since === 'number' && o.since >= 0 ? o.since : null;
    // The highest seq up to which the server said this client has everything of its rooms (or
    // was told to resync): the `resume` of an event (its seq when absent) or of a resume frame.
    // It stays below maxSeq while a lower seq may still be missing, whose resync could be lost
    // with the connection; null: maxSeq.
    this.safeSeq = null;
    this.roomSeq = new Map(); // context room -> newest seq known for it
    this.rooms = new Set(o.rooms); // context rooms wanted
    this.pending = new Set(); // rooms asked for on this connection, not yet confirmed
    this.confirmed = new Set(); // rooms the server has accepted at least once
    this.autoRooms = [];
    this.state = 'idle';
    this.transport = null;
    this.attempt = 0; // failed attempts since the last welcome
    this.conn = null; // {kind, ws|es, gen, welcomed}
    this.gen = 0;
    this.timer = null;
    this.watchdog = null;
    this.refreshToken = false;
    this.token = null;
    this.wsFailed = false; // WebSocket failed to open: use SSE until SSE fails too
    // Back online: skip the rest of the backoff wait. Only while waiting: an attempt already
    // under way would be replaced without being closed, and its socket would stay open.
    this.onOnline = () => {
      if (this.state === 'reconnecting' && this.timer !== null) this._connectNow();
    };
  }

  // ---- public API ----

  // Registers fn for type; returns a function that removes it.
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this.handlers.get(type)?.delete(fn);
  }

  get lastSeq() {
    return this.maxSeq ?? 0;
  }

  get subscriptions() {
    return [...this.rooms];
  }

  // Before connect(): deliver everything stored after seq (e.g. the newest seq the application
  // already shows from the inbox API), nothing at or below it.
  resumeFrom(seq) {
    if (this.state !== 'idle') throw new Error('resumeFrom() must come before connect()');
    this.maxSeq = seq;
    this.safeSeq = null;
    return this;
  }

  connect() {
    if (this.state !== 'idle' && this.state !== 'closed') return this;
    globalThis.addEventListener?.('online', this.onOnline);
    this._connectNow();
    return this;
  }

  // Closes for good (until connect() is called again).
  close() {
    globalThis.removeEventListener?.('online', this.onOnline);
    clearTimeout(this.timer);
    this.timer = null;
    this._drop(1000, 'client closed');
    this._setState('closed');
  }

  subscribe(room) {
    if (this.rooms.has(room)) return;
    this.rooms.add(room);
    if (this.state !== 'open') return;
    if (this.conn.kind === 'websocket') {
      this._wsSubscribe(room);
    } else {
      this._reopen(); // SSE takes its rooms when the stream starts
    }
  }

  unsubscribe(room) {
    if (!this.rooms.delete(room)) return;
    this.roomSeq.delete(room);
    this.pending.delete(room);
    this.confirmed.delete(room);
    if (this.state !== 'open') return;
    if (this.conn.kind === 'websocket') {
      this._send({ type: 'unsubscribe', room });
    } else {
      this._reopen();
    }
  }

  // Marks a notification read (by id, or by seq when a number is given). Over an open
  // WebSocket this is an `ack` frame; otherwise the inbox API. Resolves when sent / answered.
  async ack(idOrSeq) {
    if (this.state === 'open' && this.conn.kind === 'websocket') {
      const msg = typeof idOrSeq === 'number' ? { type: 'ack', seq: idOrSeq } : { type: 'ack', id: idOrSeq };
      this._send(msg);
      return { sent: true };
    }
    if (typeof idOrSeq === 'number') throw new TypeError('ack by seq needs an open WebSocket');
    return this.markRead(idOrSeq);
  }

  // ---- inbox API (docs/realtime-protocol.md) ----

  listNotifications({ unread = false, limit = 50, before } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (unread) q.set('unread', 'true');
    if (before) q.set('before', String(before));
    return this._api('GET', `?${q}`);
  }

  async unreadCount() {
    return (await this._api('GET', '/unread-count')).unread;
  }

  markRead(id) {
    return this._api('POST', `/${encodeURIComponent(id)}/read`);
  }

  markAllRead() {
    return this._api('POST', '/read-all');
  }

  async _api(method, suffix) {
    if (!this.fetch) throw new Error('no fetch available');
    for (let tries = 0; ; tries++) {
      const token = await this._token(tries > 0);
      const res = await this.fetch(new URL(this.opts.apiPath + suffix, this.base), {
        method,
        headers: { authorization: `Bearer ${token}` },
      });
      if (res.status === 401 && tries === 0) continue;
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const err = new Error(body?.error?.message || `HTTP ${res.status}`);
        err.status = res.status;
        throw err;
      }
      return body;
    }
  }

  // ---- internals: events ----

  _emit(type, arg) {
    for (const fn of [...(this.handlers.get(type) ?? [])]) {
      try {
        fn(arg, this);
      } catch (e) {
        if (type === 'error') {
          setTimeout(() => {
            throw e;
          });
        } else {
          this._emit('error', { code: 'handler_error', message: String(e?.message ?? e), error: e });
        }
      }
    }
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('state', { state: s, transport: this.transport });
  }

  async _token(refresh) {
    const exp = this.token ? tokenExpiry(this.token) : null;
    if (!this.token || refresh || this.refreshToken || (exp && exp * 1000 < Date.now() + 5000)) {
      const r = this.refreshToken || refresh || Boolean(this.token);
      this.refreshToken = false;
      this.token = await this.opts.getToken({ refresh: r });
      if (!this.token) throw new Error('getToken returned no token');
    }
    return this.token;
  }

  // ---- internals: connection life cycle ----

  _connectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    const haveWs = typeof this.WebSocket === 'function' && this.opts.transports.includes('websocket');
    const haveSse = typeof this.EventSource === 'function' && this.opts.transports.includes('sse');
    let kind = haveWs && !(this.wsFailed && haveSse) ? 'websocket' : 'sse';
    if (kind === 'sse' && !haveSse) kind = null;
    if (!kind) {
      this._setState('closed');
      this._emit('error', { code: 'no_transport', message: 'neither WebSocket nor EventSource' });
      return;
    }
    this._open(kind);
  }

  async _open(kind) {
    const gen = ++this.gen;
    // maxSeq, roomSeq: what this connection delivered (a resync with reset keeps it)
    const conn = { kind, gen, welcomed: false, maxSeq: null, roomSeq: new Map() };
    this.conn = conn;
    this.transport = kind;
    if (this.state !== 'reconnecting') this._setState('connecting');
    let token;
    try {
      token = await this._token(false);
    } catch (e) {
      if (gen !== this.gen) return;
      this._emit('error', { code: 'token_failed', message: String(e?.message ?? e) });
      this._lost(conn, { code: 0, reason: 'no token', opened: false });
      return;
    }
    if (gen !== this.gen) return; // closed or replaced meanwhile
    conn.openTimer = setTimeout(() => {
      if (this.conn === conn && !conn.welcomed) {
        this._lost(conn, { code: 0, reason: 'open timeout', opened: false });
      }
    }, this.opts.openTimeoutMs);
    if (kind === 'websocket') {
      this._openWs(conn, token);
    } else {
      this._openSse(conn, token);
    }
  }

  _openWs(conn, token) {
    const url = new URL(this.opts.wsPath, this.base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new this.WebSocket(url.href);
    } catch (e) {
      this._lost(conn, { code: 0, reason: 'WebSocket failed', opened: false });
      return;
    }
    conn.ws = ws;
    ws.onopen = () => {
      if (this.conn !== conn) return;
      const auth = { type: 'auth', token };
      if (this.maxSeq !== null) auth.since = this._safe(this.maxSeq);
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (ev) => {
      if (this.conn !== conn) return;
      let f;
      try {
        f = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data));
      } catch {
        return;
      }
      this._frame(conn, f);
    };
    ws.onerror = () => {}; // onclose follows with the code
    ws.onclose = (ev) => {
      if (this.conn !== conn) return;
      this._lost(conn, { code: ev.code, reason: ev.reason || '', opened: conn.welcomed });
    };
  }

  _openSse(conn, token) {
    const url = new URL(this.opts.ssePath, this.base);
    url.searchParams.set('access_token', token);
    // One since for every room: the oldest position needed; the filter drops what is doubled.
    let since = this.maxSeq === null ? null : this._safe(this.maxSeq);
    for (const r of this.rooms) {
      const s = this.roomSeq.get(r);
      if (s !== undefined && (since === null || s < since)) since = this._safe(s);
    }
    if (since !== null) url.searchParams.set('since', String(since));
    if (this.rooms.size) url.searchParams.set('rooms', [...this.rooms].join(','));
    for (const r of this.rooms) if (!this.confirmed.has(r)) this.pending.add(r);
    // Browsers cannot set headers on EventSource; the `eventsource` package (Node) can, and the
    // server prefers Last-Event-ID over `since`.
    const init = since !== null ? { headers: { 'Last-Event-ID': String(since) } } : {};
    let es;
    try {
      es = new this.EventSource(url.href, init);
    } catch (e) {
      this._lost(conn, { code: 0, reason: 'EventSource failed', opened: false });
      return;
    }
    conn.es = es;
    es.onmessage = (ev) => {
      if (this.conn !== conn) return;
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      this._frame(conn, f);
    };
    es.onerror = (ev) => {
      if (this.conn !== conn) return;
      // EventSource would retry on its own without backoff or a fresh token: take over.
      const status = ev?.status;
      if (status || conn.welcomed) {
        this._sseFailed(conn, { status });
        return;
      }
      // A browser's EventSource reports a refusal (401, 403, 429) as a bare error, the same as a
      // network failure: retried as one, a refusal would be retried forever. Ask why.
      es.onerror = null;
      es.close();
      this._sseRefusal(url.href, token).then((why) => this._sseFailed(conn, why));
    };
  }

  // The status of GET url (and for a 403 the message, for a 429 the Retry-After), or null when
  // the request fails. Only the head is read: a 200 is a stream, abandoned at once.
  async _sseRefusal(url, token) {
    if (!this.fetch) return null;
    const abort = typeof AbortController === 'function' ? new AbortController() : null;
    try {
      const res = await this.fetch(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal: abort?.signal,
      });
      const why = { status: res.status, retryAfter: res.headers?.get?.('retry-after') ?? null };
      if (res.status === 403) why.message = (await res.json().catch(() => null))?.error?.message;
      return why;
    } catch {
      return null;
    } finally {
      abort?.abort();
    }
  }

  // An SSE stream failed or was refused; why: {status, message, retryAfter} as far as known.
  _sseFailed(conn, why) {
    const status = why?.status;
    const code =
      status === 401 ? CLOSE_AUTH : status === 403 ? CLOSE_FORBIDDEN : status === 429 ? CLOSE_TOO_MANY : 0;
    const retryAfter = Number(why?.retryAfter);
    this._lost(conn, {
      code,
      reason: status ? `HTTP ${status}` : 'stream failed',
      opened: conn.welcomed,
      refused: code === CLOSE_FORBIDDEN ? this._roomsNamed(why?.message) : null,
      waitMs: code === CLOSE_TOO_MANY && retryAfter > 0 ? retryAfter * 1000 : 0,
    });
  }

  // The wanted rooms that text names as words, or null when it names none.
  _roomsNamed(text) {
    const words = new Set(String(text ?? '').split(/[\s"'`,;()]+/));
    const rooms = [...this.rooms].filter((r) => words.has(r));
    return rooms.length ? rooms : null;
  }

  _send(obj) {
    const ws = this.conn?.ws;
    if (ws && ws.readyState === WS_OPEN) ws.send(JSON.stringify(obj));
  }

  _wsSubscribe(room) {
    const msg = { type: 'subscribe', room };
    const s = this.roomSeq.get(room);
    if (s !== undefined) msg.since = this._safe(s);
    this.pending.add(room);
    this._send(msg);
  }

  // The server's frames, whichever transport carried them.
  _frame(conn, f) {
    switch (f.type) {
      case 'welcome':
        conn.welcomed = true;
        clearTimeout(conn.openTimer);
        this.attempt = 0;
        if (conn.kind === 'websocket') this.wsFailed = false;
        this.autoRooms = f.rooms ?? [];
        if (conn.kind === 'websocket') {
          for (const r of this.rooms) this._wsSubscribe(r);
          this._startWatchdog(conn, f.heartbeat_ms);
        } else {
          for (const r of this.rooms) this.confirmed.add(r); // checked before the stream began
          this.pending.clear();
        }
        this._setState('open');
        this._emit('open', { transport: conn.kind, welcome: f });
        break;
      case 'event':
        this._touch(conn);
        this._event(conn, f);
        break;
      case 'subscribed':
        this.pending.delete(f.room);
        if (this.rooms.has(f.room)) this.confirmed.add(f.room);
        if (!this.roomSeq.has(f.room) && this.rooms.has(f.room)) {
          // live from here on: resume this room from what the connection had seen
          this.roomSeq.set(f.room, Math.max(f.seq || 0, this.maxSeq ?? 0));
        }
        this._emit('subscribed', f);
        break;
      case 'unsubscribed':
        this._emit('unsubscribed', f);
        break;
      case 'read':
        this._emit('read', f);
        break;
      case 'error':
        if (f.code === 'forbidden') {
          // The close 4003 that follows must not guess again what this frame has said.
          conn.forbidden = true;
          this._forbid(typeof f.room === 'string' ? [f.room] : null);
        }
        this._emit('error', f);
        break;
      case 'resume': {
        // Nothing up to seq is missing any more: resume from there (not further back).
        const seq = Number(f.seq);
        if (Number.isSafeInteger(seq) && seq >= 0) this._claim(seq);
        break;
      }
      case 'resync': {
        const since = Number(f.since);
        if (!Number.isSafeInteger(since) || since < 0) break;
        if (f.reset) {
          // The seq resumed from is above every one the store holds (it was reset or restored,
          // or is another deployment's): the server resumes this connection from since instead.
          this._rebase(conn, since);
          this.safeSeq = since;
          this._emit('resync', f);
          break;
        }
        // Another instance's notifications went missing while the link between instances was
        // down: resume from the seq the server names. Events already delivered stay filtered.
        if (this.maxSeq === null || since < this.maxSeq) this.maxSeq = since;
        if (this.safeSeq !== null && since < this.safeSeq) this.safeSeq = since;
        for (const [room, s] of this.roomSeq) if (s > since) this.roomSeq.set(room, since);
        if (this.filter.floor > since) this.filter.floor = since;
        this._emit('resync', f);
        this._lost(conn, { code: 0, reason: 'resync', opened: conn.welcomed, resync: true });
        break;
      }
      case 'close': // SSE: the server ends the stream
        this._lost(conn, { code: f.code, reason: f.reason || '', opened: conn.welcomed });
        break;
      default:
        break; // pong, future frame types
    }
    this._touch(conn);
  }

  _event(conn, f) {
    const seq = Number(f.seq);
    if (!Number.isSafeInteger(seq) || seq <= 0) return;
    // The server resumes from here, not from seq, while a lower seq may still be missing.
    const resume = Number(f.resume);
    this._claim(Number.isSafeInteger(resume) && resume >= 0 && resume < seq ? resume : seq);
    if (this.rooms.has(f.room) && !(this.roomSeq.get(f.room) >= seq)) this.roomSeq.set(f.room, seq);
    if (!(conn.roomSeq.get(f.room) >= seq)) conn.roomSeq.set(f.room, seq);
    // delivered before (resume overlap, redelivery)
    if (!this.filter.accept(seq, conn.gen, this._safe(this.maxSeq ?? seq))) return;
    if (this.maxSeq === null || seq > this.maxSeq) this.maxSeq = seq;
    if (!(conn.maxSeq >= seq)) conn.maxSeq = seq;
    if (f.event) this._emit(f.event, f);
    this._emit('*', f);
  }

  // The server says everything up to seq has reached this client. Such a statement stays true
  // (only a resync takes it back), so the highest one counts.
  _claim(seq) {
    if (this.safeSeq === null || seq > this.safeSeq) this.safeSeq = seq;
  }

  // seq, or the server's resume point when it is lower.
  _safe(seq) {
    return this.safeSeq !== null && this.safeSeq < seq ? this.safeSeq : seq;
  }

  // The seqs above since known from before conn name other notifications now (a different
  // store's): forget them so that the new ones are neither dropped as seen nor skipped on resume.
  _rebase(conn, since) {
    if (this.maxSeq === null || this.maxSeq > since) this.maxSeq = Math.max(since, conn.maxSeq ?? 0);
    for (const [room, s] of this.roomSeq) {
      if (s > since) this.roomSeq.set(room, Math.max(since, conn.roomSeq.get(room) ?? 0));
    }
    this.filter.forgetAbove(since, conn.gen);
  }

  // Rooms the server refused are dropped so that reconnecting does not ask for them again.
  // refused: the rooms it named. null when it named none (an older server, an SSE 403): then the
  // rooms asked for and never confirmed are taken for refused. A confirmed room being resumed was
  // allowed before; dropping it on a guess would lose it for good (the dashboard saves the list).
  _forbid(refused) {
    const drop = refused ?? [...this.pending].filter((r) => !this.confirmed.has(r));
    const rooms = drop.filter((r) => this.rooms.has(r));
    for (const r of drop) {
      this.rooms.delete(r);
      this.roomSeq.delete(r);
      this.pending.delete(r);
      this.confirmed.delete(r);
    }
    if (rooms.length) this._emit('error', { code: 'room_refused', rooms, message: 'not allowed to join' });
  }

  // WebSocket liveness: the server pings (browsers answer but do not tell), so ask for an
  // application pong and give up on a connection that says nothing for too long.
  _startWatchdog(conn, heartbeatMs) {
    const every = Math.max(1000, Number(heartbeatMs) || 25000);
    conn.lastRx = Date.now();
    conn.watchdog = setInterval(() => {
      if (this.conn !== conn) return clearInterval(conn.watchdog);
      if (Date.now() - conn.lastRx > every * 2.5) {
        this._lost(conn, { code: 0, reason: 'no heartbeat', opened: true });
        return;
      }
      this._send({ type: 'ping' });
    }, every);
  }

  _touch(conn) {
    conn.lastRx = Date.now();
  }

  // Ends the current connection without scheduling anything.
  _drop(code, reason) {
    const c = this.conn;
    this.conn = null;
    this.gen++;
    this.pending.clear();
    if (!c) return;
    clearTimeout(c.openTimer);
    clearInterval(c.watchdog);
    if (c.ws) {
      c.ws.onopen = c.ws.onmessage = c.ws.onclose = null;
      c.ws.onerror = () => {};
      try {
        c.ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
    if (c.es) {
      c.es.onmessage = c.es.onerror = null;
      c.es.close();
    }
  }

  // SSE room change: a new stream right away (not a failure).
  _reopen() {
    this._drop(1000, 'rooms changed');
    this._connectNow();
  }

  // waitMs: the least delay before the next attempt (an HTTP 429's Retry-After).
  _lost(conn, { code, reason, opened, resync = false, refused = null, waitMs = 0 }) {
    if (this.conn !== conn) return;
    if (code === CLOSE_FORBIDDEN && !conn.forbidden) this._forbid(refused);
    this._drop(1000, 'reconnecting');
    if (code === CLOSE_AUTH) this.refreshToken = true;
    let delay;
    const haveSse = typeof this.EventSource === 'function' && this.opts.transports.includes('sse');
    if (!opened && conn.kind === 'websocket' && haveSse && code !== CLOSE_AUTH && code !== CLOSE_TOO_MANY) {
      // WebSocket did not open (blocked, proxy, unsupported): SSE now, no waiting.
      this.wsFailed = true;
      delay = 0;
    } else {
      if (conn.kind === 'sse' && !opened) this.wsFailed = false; // next round starts with WS
      if ((opened && code === CLOSE_AUTH) || resync) {
        delay = 0; // token expired while connected, or a resync: straight back
      } else {
        delay = Math.max(waitMs, backoffDelay(this.attempt, this.opts.backoff));
        this.attempt++;
      }
    }
    this._emit('close', { code, reason, transport: conn.kind, reconnectInMs: delay });
    this._setState('reconnecting');
    this.timer = setTimeout(() => this._connectNow(), delay);
  }
}

export default DataRouterClient;
