// One WebSocket per tab (API.md, "WebSocket"), shared by every page: pages subscribe to topics
// with a handler that knows its resume point, and after a reconnect or a `resync` the handler's
// current resume point is sent again, so the server replays exactly what was missed.

const listeners = new Set();
const subs = new Map(); // topic → Set of handlers {event(msg), resume() → number|undefined, error(e), live()}
let ws = null;
let state = 'offline';
let retry = 0;
let timer = null;
let wanted = false;

/** The connection state: 'connecting', 'live' or 'offline'. */
export function current() {
  return state;
}

/** `fn(state)` on every change of the connection state; returns a function that stops it. */
export function watch(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function set(s) {
  if (s === state) return;
  state = s;
  listeners.forEach((f) => f(s));
}

/** Opens the socket (once logged in) and keeps it open. */
export function start() {
  wanted = true;
  if (!ws) connect();
}

/** Closes it for good (logout). */
export function stop() {
  wanted = false;
  clearTimeout(timer);
  if (ws) ws.close(1000);
  ws = null;
  set('offline');
}

function connect() {
  clearTimeout(timer);
  set('connecting');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws';
  const sock = new WebSocket(url);
  ws = sock;
  sock.onopen = () => {
    retry = 0;
    set('live');
    for (const topic of subs.keys()) send(topic);
  };
  sock.onmessage = (m) => {
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (msg.op === 'resync') {
      // The server dropped our backlog: ask again from where each handler is.
      for (const t of msg.topics || []) if (subs.has(t)) send(t);
    } else if (msg.op === 'error') {
      for (const hd of subs.get(msg.topic) || []) hd.error && hd.error(msg.error);
    } else if (msg.op === 'subscribed') {
      for (const t of msg.topics || []) for (const hd of subs.get(t) || []) hd.live && hd.live();
    } else if (msg.topic) {
      for (const hd of subs.get(msg.topic) || []) hd.event(msg);
    }
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    if (!wanted) return set('offline');
    set(retry > 1 ? 'offline' : 'connecting');
    // Backoff with jitter so that the clients of a node that died do not all return at once.
    const delay = Math.min(10000, 300 * 2 ** retry) * (0.7 + Math.random() * 0.6);
    retry += 1;
    timer = setTimeout(connect, delay);
  };
}

function send(topic) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const msg = { op: 'subscribe', topics: [topic] };
  // With several handlers on one topic, the earliest resume point serves them all.
  let resume;
  for (const hd of subs.get(topic) || []) {
    const r = hd.resume ? hd.resume() : undefined;
    if (r !== undefined && r !== null && (resume === undefined || r < resume)) resume = r;
  }
  if (resume !== undefined) msg.resume = { [topic]: resume };
  ws.send(JSON.stringify(msg));
}

/** Follows `topic` with `handler`; returns a function that stops following. */
export function subscribe(topic, handler) {
  let set_ = subs.get(topic);
  const fresh = !set_;
  if (fresh) subs.set(topic, (set_ = new Set()));
  set_.add(handler);
  if (fresh) send(topic);
  return () => {
    set_.delete(handler);
    if (set_.size === 0) {
      subs.delete(topic);
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op: 'unsubscribe', topics: [topic] }));
    }
  };
}
