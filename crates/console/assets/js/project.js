// The header every page of a project shares: its name, the caller's role, and the tabs the role
// may use (a tab whose page the role cannot use is not shown; the API decides regardless).

import { h } from './dom.js';
import * as api from './api.js';

const TABS = [
  ['', 'Tasks', 'viewer'],
  ['/templates', 'Templates', 'viewer'],
  ['/schedules', 'Schedules', 'viewer'],
  ['/secrets', 'Secrets', 'viewer'],
  ['/members', 'Members', 'viewer'],
  ['/audit', 'Audit log', 'owner'],
  ['/settings', 'Settings', 'owner'],
];

/** Reads the project (with the caller's role) and returns it with its header element. */
export async function load(ctx, active) {
  const project = await api.get('/projects/' + ctx.params.pid);
  return { project, header: header(ctx, project, active) };
}

export function header(ctx, project, active) {
  const base = '/ui/projects/' + project.id;
  return h('header.page-head',
    h('p.crumbs', h('a', { href: '/ui/' }, 'Projects'), ' / '),
    h('div.title-row',
      h('h1', project.name),
      h('span.role', { title: 'Your role in this project' }, ctx.me.admin ? 'administrator' : project.role)),
    project.description ? h('p.muted', project.description) : null,
    h('nav.tabs', { 'aria-label': 'Project' },
      TABS.filter(([, , need]) => api.may(project.role, need, ctx.me)).map(([path, label]) =>
        h('a', { href: base + path, 'aria-current': path === active ? 'page' : null }, label))),
  );
}

/** Template names by id, for lists that show tasks and schedules. */
export async function templateNames(pid) {
  const names = new Map();
  for (const t of await api.all('/projects/' + pid + '/templates')) names.set(t.id, t.name);
  return names;
}
