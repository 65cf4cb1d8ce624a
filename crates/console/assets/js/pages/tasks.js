// A project's tasks, live: new tasks appear and statuses change as the server announces them
// (topic `project:<pid>`); filters by status and template; a "Run" form for roles that may run.

import { h, field, fill, errorBox } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';
import { STATUSES, ACTIVE, HEADERS, row } from '../tasklist.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const [{ project: p, header }, templates] = await Promise.all([
    project.load(ctx, ''),
    api.all(`/projects/${pid}/templates`),
  ]);
  const names = new Map(templates.map((t) => [t.id, t.name]));
  const filter = { status: ctx.query.get('status') || '', template_id: ctx.query.get('template_id') || '' };

  const tasks = new Map(); // id → task, the newest version seen
  let next = null;
  let newest = 0; // the highest updated_at seen (ms), for resuming the live topic
  const body = h('tbody');
  const summary = h('p.summary', { 'aria-live': 'polite' });
  const more = h('button', { type: 'button', hidden: true }, 'Older tasks');
  const errors = h('div');

  const matches = (t) => (!filter.status || t.status === filter.status) && (!filter.template_id || String(t.template_id) === filter.template_id);
  const take = (t) => {
    const had = tasks.get(t.id);
    if (had && had.version >= t.version) return false;
    newest = Math.max(newest, Date.parse(t.updated_at || t.created_at) || 0);
    if (matches(t)) tasks.set(t.id, t);
    else tasks.delete(t.id);
    return true;
  };
  const paint = () => {
    const sorted = [...tasks.values()].sort((a, b) => b.id - a.id);
    fill(body, sorted.map((t) => row(t, pid, names)));
    table.hidden = sorted.length === 0;
    empty.hidden = sorted.length > 0;
    const running = sorted.filter((t) => t.status === 'running' || t.status === 'assigned').length;
    const waiting = sorted.filter((t) => t.status === 'queued').length;
    fill(summary, h('strong', String(running)), ' running · ', h('strong', String(waiting)), ' waiting',
      waiting ? h('span.muted', ' — each waiting task says why') : '');
  };
  const table = h('div.table-wrap', h('table.tasks', h('thead', h('tr', HEADERS.map((t) => h('th', { scope: 'col' }, t)))), body));
  const empty = h('p.empty', 'No task matches.');

  async function load(reset) {
    const page = await api.get(api.q(`/projects/${pid}/tasks`, { ...filter, limit: 50, before: reset ? null : next }));
    if (reset) tasks.clear();
    const serverNow = api.serverNow();
    page.items.forEach(take);
    if (reset) newest = Math.max(newest, serverNow - 2000);
    next = page.next;
    more.hidden = next === null || next === undefined;
    paint();
  }
  more.addEventListener('click', () => load(false).catch((e) => errors.replaceChildren(errorBox(e))));

  // Filters live in the address, so a filtered view can be shared and survives a reload.
  const status = h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s, selected: s === filter.status }, s.replace('_', ' '))));
  const tmpl = h('select', { name: 'template_id' }, h('option', { value: '' }, 'any'), templates.map((t) => h('option', { value: t.id, selected: String(t.id) === filter.template_id }, t.name)));
  const onFilter = () => {
    filter.status = status.value;
    filter.template_id = tmpl.value;
    history.replaceState(null, '', api.q(location.pathname, filter));
    load(true).catch((e) => errors.replaceChildren(errorBox(e)));
  };
  status.addEventListener('change', onFilter);
  tmpl.addEventListener('change', onFilter);

  fill(main, header,
    api.may(p.role, 'runner', ctx.me) ? runForm(ctx, pid, templates) : null,
    h('section', { 'aria-labelledby': 'tasks-title' },
      h('div.list-head', h('h2#tasks-title', 'Tasks'), summary,
        h('div.filters', field('Status', status), field('Template', tmpl))),
      errors, table, empty, more));
  await load(true);

  // Live: apply every change; after a reconnect, read the list again (cheap) so nothing is missed.
  let wasLive = true;
  const stopLive = ctx.live.subscribe(`project:${pid}`, {
    resume: () => newest - 5000,
    event: (m) => {
      if ((m.type === 'task.created' || m.type === 'task.updated') && m.data && take(m.data)) paint();
    },
    error: (e) => errors.replaceChildren(errorBox(e)),
  });
  const stopWatch = ctx.live.watch((s) => {
    if (s === 'live' && !wasLive) load(true).catch(() => {});
    wasLive = s === 'live';
  });
  // Durations and "waiting" times move on their own.
  const tick = setInterval(() => {
    if ([...tasks.values()].some((t) => ACTIVE.has(t.status))) paint();
  }, 5000);
  return () => {
    stopLive();
    stopWatch();
    clearInterval(tick);
  };
}

function runForm(ctx, pid, templates) {
  if (!templates.length) {
    return h('p.card.muted', 'No template yet. ', h('a', { href: `/ui/projects/${pid}/templates/new` }, 'Create one'), ' to run tasks.');
  }
  const tmpl = h('select', { name: 'template_id', required: true }, templates.map((t) => h('option', { value: t.id }, t.name)));
  const env = h('textarea.mono', { name: 'env', rows: 2, placeholder: 'NAME=value, one per line', spellcheck: 'false' });
  const out = h('div');
  const form = h('form.card.run', { 'aria-labelledby': 'run-title' },
    h('h2#run-title', 'Run a task'),
    h('div.row', field('Template', tmpl), field('Environment overrides', env, 'Optional. Added to the template\'s variables for this run.')),
    out,
    h('button.primary', { type: 'submit' }, 'Run'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      const body = { template_id: Number(tmpl.value) };
      const vars = parseEnv(env.value);
      if (Object.keys(vars).length) body.env = vars;
      const t = await api.post(`/projects/${pid}/tasks`, body);
      ctx.navigate(`/ui/projects/${pid}/tasks/${t.id}`);
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return form;
}

/** `NAME=value` lines → object; blank lines and `#` comments are ignored. */
export function parseEnv(text) {
  const vars = {};
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const i = l.indexOf('=');
    if (i <= 0) throw new Error(`"${l}" is not NAME=value`);
    vars[l.slice(0, i).trim()] = l.slice(i + 1);
  }
  return vars;
}
