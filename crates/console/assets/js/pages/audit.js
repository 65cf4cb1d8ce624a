// The audit log: every write made through the API, refused ones too, newest first. One project's
// entries for its owners (under the project's header), everything for administrators (with
// filters by project, user and action). Pages go back in time with "Older".

import { h, field, fill, fullTime, errorBox } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';

/** The actions the server records (its route names), offered as suggestions for the filter. */
const ACTIONS = [
  'auth.login', 'auth.logout', 'users.me.update', 'users.create', 'users.update', 'users.delete',
  'tokens.create', 'tokens.delete', 'projects.create', 'projects.update', 'projects.delete',
  'members.set', 'members.delete', 'secrets.create', 'secrets.set', 'secrets.delete',
  'templates.create', 'templates.update', 'templates.delete', 'tasks.create', 'tasks.cancel',
  'schedules.create', 'schedules.update', 'schedules.delete', 'runner-registration-tokens.create',
  'runners.update', 'runners.delete', 'cluster.nodes.drain',
];

const HEADERS = ['Time', 'User', 'Token', 'Client address', 'Node', 'Action', 'Target', 'Detail'];

export async function render(main, ctx) {
  const pid = ctx.params.pid ? Number(ctx.params.pid) : null;
  if (!pid && !ctx.me.admin) {
    main.append(h('header.page-head', h('h1', 'Audit log')), h('p.notice', 'Only administrators read the whole audit log; a project\'s owners read its own under the project.'));
    return;
  }
  const path = pid ? `/projects/${pid}/audit` : '/audit';
  const filter = {
    project_id: pid ? '' : ctx.query.get('project_id') || '',
    user_id: ctx.query.get('user_id') || '',
    action: ctx.query.get('action') || '',
  };

  // Who can be picked in the user filter: every user for administrators, else the members.
  let head;
  let people = [];
  let projects = [];
  if (pid) {
    const { project: p, header } = await project.load(ctx, '/audit');
    if (!api.may(p.role, 'owner', ctx.me)) {
      main.append(header, h('p.notice', 'Only the project\'s owners read its audit log.'));
      return;
    }
    head = header;
    people = (await api.all(`/projects/${pid}/members`)).map((m) => ({ id: m.user_id, username: m.username }));
  } else {
    [people, projects] = await Promise.all([api.all('/users').catch(() => []), api.all('/projects').catch(() => [])]);
    head = h('header.page-head', h('h1', 'Audit log'),
      h('p.muted', 'Every write made through the API, refused ones and failed logins too, with who made it and from where.'));
  }

  const body = h('tbody');
  const wrap = h('div.table-wrap', h('table.audit', h('thead', h('tr', HEADERS.map((t) => h('th', { scope: 'col' }, t)))), body));
  const empty = h('p.empty', 'No entry matches.');
  const more = h('button', { type: 'button', hidden: true }, 'Older');
  const errors = h('div');
  let next = null;
  let count = 0;

  async function load(reset) {
    const page = await api.get(api.q(path, { ...filter, limit: 50, before: reset ? null : next }));
    if (reset) {
      body.replaceChildren();
      count = 0;
    }
    body.append(...page.items.map(row));
    count += page.items.length;
    next = page.next;
    more.hidden = next === null || next === undefined;
    wrap.hidden = count === 0;
    empty.hidden = count > 0;
  }
  const failed = (e) => fill(errors, errorBox(e));
  more.addEventListener('click', async () => {
    more.disabled = true;
    errors.replaceChildren();
    await load(false).catch(failed);
    more.disabled = false;
  });

  // Filters live in the address, like the task list's.
  const onFilter = () => {
    errors.replaceChildren();
    history.replaceState(null, '', api.q(location.pathname, filter));
    load(true).catch(failed);
  };
  const pick = (name, label, options, anyText) => {
    const sel = h('select', { name },
      h('option', { value: '' }, anyText),
      options.map(([v, t]) => h('option', { value: v, selected: String(v) === filter[name] }, t)));
    // A value from the address that is not among the options still shows, and still filters.
    if (filter[name] && sel.value !== filter[name]) sel.append(h('option', { value: filter[name], selected: true }, '#' + filter[name]));
    sel.addEventListener('change', () => {
      filter[name] = sel.value;
      onFilter();
    });
    return field(label, sel);
  };
  const action = h('input', { name: 'action', list: 'audit-actions', value: filter.action, placeholder: 'any', size: 18, spellcheck: 'false', autocapitalize: 'none' });
  action.addEventListener('change', () => {
    filter.action = action.value.trim();
    onFilter();
  });
  const filters = h('div.filters',
    pid ? null : pick('project_id', 'Project', projects.map((p) => [p.id, p.name]), 'any'),
    pick('user_id', 'User', people.map((u) => [u.id, u.username]), 'anyone'),
    field('Action', action),
    h('datalist#audit-actions', ACTIONS.map((a) => h('option', { value: a }))));

  main.append(head,
    h('section', { 'aria-labelledby': 'audit-title' },
      h('div.list-head', h('h2#audit-title', 'Entries'), filters),
      errors, wrap, empty, more));
  await load(true);
}

function row(e) {
  const who = e.username
    ? h('span', { title: e.user_id ? `user #${e.user_id}` : 'no such user' }, e.username)
    : h('span.muted', e.user_id ? `#${e.user_id}` : '–');
  const refused = e.status >= 400;
  return h('tr', { dataset: { id: e.id } },
    h('td', h('time', { datetime: e.time }, fullTime(e.time))),
    h('td', who),
    h('td', e.token_id ? h('span', { title: 'Made with API token #' + e.token_id }, '#' + e.token_id) : h('span.muted', { title: 'Made in a browser session' }, 'session')),
    h('td.mono', e.client_ip || '–'),
    h('td.mono', e.node || '–'),
    h('td.long', h('code', e.action), refused ? [' ', h('span.badge.st-failed', { title: 'The API refused it with this status' }, String(e.status))] : null),
    h('td.long', h('code', e.target)),
    h('td.long', e.detail || ''));
}
