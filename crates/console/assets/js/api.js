// The JSON API (API.md), as the console uses it: the session cookie authenticates, errors become
// ApiError with the server's code and message, and the node that answered is remembered for the
// header ("served by").

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = { node: [], unauthenticated: [] };
export let lastNode = null;
let skew = 0;

/** Now by the server's clock (to a second), for resume points that the server compares. */
export function serverNow() {
  return Date.now() + skew;
}

/** `on('node', fn)` when the answering node changes; `on('unauthenticated', fn)` on a 401. */
export function on(what, fn) {
  listeners[what].push(fn);
}

async function request(method, path, body) {
  const init = { method, headers: { accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch('/api/v1' + path, init);
  } catch {
    throw new ApiError(0, 'unreachable', 'the server did not answer; check your connection');
  }
  const date = Date.parse(resp.headers.get('date') || '');
  if (date) skew = date - Date.now();
  const node = resp.headers.get('x-baton-node');
  if (node && node !== lastNode) {
    lastNode = node;
    listeners.node.forEach((f) => f(node));
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(resp.status, e.code || 'http_' + resp.status, e.message || resp.statusText);
    if (resp.status === 401 && !path.startsWith('/auth/')) listeners.unauthenticated.forEach((f) => f(err));
    throw err;
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, body);
export const put = (path, body = {}) => request('PUT', path, body);
export const patch = (path, body = {}) => request('PATCH', path, body);
export const del = (path) => request('DELETE', path);

/** `path` with the query parameters that are set. */
export function q(path, params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const t = s.toString();
  return t ? path + (path.includes('?') ? '&' : '?') + t : path;
}

/** Every item of a paged list (for short lists such as templates; at most `max`). */
export async function all(path, max = 2000) {
  const items = [];
  let before = null;
  do {
    const page = await get(q(path, { limit: 500, before }));
    items.push(...page.items);
    before = page.next;
  } while (before !== null && before !== undefined && items.length < max);
  return items;
}

/** The caller's role in a project allows `need` (viewer < runner < manager < owner). */
const RANK = { viewer: 1, runner: 2, manager: 3, owner: 4 };
export function may(role, need, me) {
  return Boolean(me && me.admin) || (RANK[role] || 0) >= RANK[need];
}
