// The console's shell: who is logged in, the top bar (navigation, connection state, the node
// that answered), and a router that maps the address to a page module. Pages load on demand so
// the first page stays small; each exports `render(main, ctx)` and may return a cleanup function.

import { h, fill } from './dom.js';
import * as api from './api.js';
import * as live from './live.js';

const ROUTES = [
  [/^\/ui\/login$/, 'login'],
  [/^\/(ui\/?)?$/, 'projects'],
  [/^\/ui\/projects\/(?<pid>\d+)$/, 'tasks'],
  [/^\/ui\/projects\/(?<pid>\d+)\/tasks\/(?<id>\d+)$/, 'task'],
  [/^\/ui\/projects\/(?<pid>\d+)\/templates$/, 'templates'],
  [/^\/ui\/projects\/(?<pid>\d+)\/templates\/(?<tid>\d+|new)$/, 'template'],
  [/^\/ui\/projects\/(?<pid>\d+)\/schedules$/, 'schedules'],
  [/^\/ui\/projects\/(?<pid>\d+)\/schedules\/(?<sid>\d+|new)$/, 'schedule'],
  [/^\/ui\/projects\/(?<pid>\d+)\/secrets$/, 'secrets'],
  [/^\/ui\/projects\/(?<pid>\d+)\/members$/, 'members'],
  [/^\/ui\/projects\/(?<pid>\d+)\/audit$/, 'audit'],
  [/^\/ui\/projects\/(?<pid>\d+)\/settings$/, 'settings'],
  [/^\/ui\/runners$/, 'runners'],
  [/^\/ui\/cluster$/, 'cluster'],
  [/^\/ui\/users$/, 'users'],
  [/^\/ui\/audit$/, 'audit'],
  [/^\/ui\/account$/, 'account'],
];

const ctx = { me: null, navigate, live, api };
let cleanup = null;
let seq = 0;

/** Shows the page of `path` (and records it in the history unless `replace` says otherwise). */
export async function navigate(path, { replace = false, push = true } = {}) {
  if (push && path !== location.pathname + location.search) {
    history[replace ? 'replaceState' : 'pushState'](null, '', path);
  }
  await show();
}

async function show() {
  const mine = ++seq;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's cleanup must not stop the next page */
    }
    cleanup = null;
  }
  const path = location.pathname;
  const match = ROUTES.map(([re, page]) => [path.match(re), page]).find(([m]) => m);
  if (!ctx.me && (!match || match[1] !== 'login')) {
    return navigate('/ui/login?next=' + encodeURIComponent(path + location.search), { replace: true });
  }
  topBar();
  const main = document.getElementById('main');
  if (!match) {
    fill(main, h('h1', 'Not found'), h('p', 'No page lives at ', h('code', path), '. ', h('a', { href: '/ui/' }, 'Go to projects')));
    return;
  }
  const [m, page] = match;
  ctx.params = { ...(m.groups || {}) };
  ctx.query = new URLSearchParams(location.search);
  let mod;
  try {
    mod = await import(`./pages/${page}.js`);
  } catch (e) {
    fill(main, h('p.error', { role: 'alert' }, 'This page failed to load: ' + e.message));
    return;
  }
  if (mine !== seq) return;
  main.replaceChildren();
  main.removeAttribute('aria-busy');
  try {
    const c = await mod.render(main, ctx);
    if (mine === seq) cleanup = typeof c === 'function' ? c : null;
    else if (typeof c === 'function') c();
  } catch (e) {
    if (mine !== seq) return;
    if (e.status === 404) fill(main, h('h1', 'Not found'), h('p', e.message), h('p', h('a', { href: '/ui/' }, 'Go to projects')));
    else if (e.status !== 401) fill(main, h('p.error', { role: 'alert' }, e.message));
  }
  if (document.activeElement === document.body) main.focus({ preventScroll: true });
}

function topBar() {
  const top = document.getElementById('top');
  if (!ctx.me) {
    top.hidden = true;
    return;
  }
  top.hidden = false;
  const here = location.pathname;
  const item = (href, text, match) =>
    h('a', { href, 'aria-current': (match || ((p) => p === href))(here) ? 'page' : null }, text);
  const admin = ctx.me.admin;
  fill(top,
    h('a.brand', { href: '/ui/', 'aria-label': 'Baton, projects' }, h('img', { src: '/ui/assets/icon.svg', alt: '', width: 22, height: 22 }), 'Baton'),
    h('nav', { 'aria-label': 'Main' },
      item('/ui/', 'Projects', (p) => p === '/' || p === '/ui/' || p === '/ui' || p.startsWith('/ui/projects')),
      item('/ui/runners', 'Runners'),
      admin && item('/ui/cluster', 'Cluster'),
      admin && item('/ui/users', 'Users'),
      admin && item('/ui/audit', 'Audit'),
    ),
    h('div.spacer'),
    connection(),
    h('span.node', { id: 'served-by', title: 'The node that answered the last request' }, api.lastNode ? 'node ' + api.lastNode : ''),
    h('a.user', { href: '/ui/account', title: 'Your account and API tokens' }, ctx.me.username),
    h('button.link', { type: 'button', onclick: logout }, 'Log out'),
  );
}

let indicator = null;
function connection() {
  indicator = h('span.conn', { role: 'status', 'aria-live': 'polite', id: 'connection' });
  paint(live.current());
  return indicator;
}

const WORDS = { live: 'Live', connecting: 'Connecting…', offline: 'Offline — reconnecting' };
function paint(state) {
  if (!indicator) return;
  indicator.dataset.state = state;
  indicator.title = state === 'live' ? 'Receiving live updates' : 'Live updates are paused; the page catches up when the connection returns';
  fill(indicator, h('span.dot', { 'aria-hidden': 'true' }), WORDS[state]);
}

async function logout() {
  try {
    await api.post('/auth/logout');
  } catch {
    /* the session may already be gone */
  }
  live.stop();
  ctx.me = null;
  navigate('/ui/login', { replace: true });
}

/** Logs in `user` (after the login page succeeded). */
ctx.loggedIn = (user) => {
  ctx.me = user;
  live.start();
};

live.watch(paint);
api.on('node', (n) => {
  const el = document.getElementById('served-by');
  if (el) el.textContent = 'node ' + n;
});
api.on('unauthenticated', () => {
  if (!ctx.me) return;
  ctx.me = null;
  live.stop();
  navigate('/ui/login?next=' + encodeURIComponent(location.pathname + location.search), { replace: true });
});

// Links inside the console navigate without reloading the page.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === '/' || url.pathname.startsWith('/ui'))) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => show());

async function boot() {
  try {
    ctx.me = await api.get('/users/me');
    live.start();
  } catch {
    ctx.me = null;
  }
  await show();
}

boot();
