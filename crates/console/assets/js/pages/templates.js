// A project's templates: what each runs on and how (labels, shell, timeout, attempts). Managers
// create new ones; roles that may run start a task from a template in one click and land on it.

import { h, table, span, actionButton } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const [{ project: p, header }, templates] = await Promise.all([
    project.load(ctx, '/templates'),
    api.all(`/projects/${pid}/templates`),
  ]);
  const manage = api.may(p.role, 'manager', ctx.me);
  const run = api.may(p.role, 'runner', ctx.me);
  const base = `/ui/projects/${pid}/templates`;

  const headers = ['Template', 'Labels', 'Shell', 'Timeout', 'Max attempts'];
  if (run) headers.push(h('span.visually-hidden', 'Actions'));
  const rows = templates
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((t) => {
      const cells = [
        h('a', { href: `${base}/${t.id}` }, t.name),
        labels(t.labels),
        h('code', t.shell || 'bash'),
        t.timeout_seconds ? span(t.timeout_seconds) : h('span.muted', 'none'),
        String(t.max_attempts ?? 1),
      ];
      if (run) {
        cells.push(actionButton('Run', async () => {
          const task = await api.post(`/projects/${pid}/tasks`, { template_id: t.id });
          ctx.navigate(`/ui/projects/${pid}/tasks/${task.id}`);
        }, { aria: `Run ${t.name}` }));
      }
      return cells;
    });

  main.append(header,
    h('section.list-mid', { 'aria-labelledby': 'templates-title' },
      h('div.list-head', h('h2#templates-title', 'Templates'),
        h('p.summary', templates.length === 1 ? '1 template' : `${templates.length} templates`),
        manage ? h('div.filters', h('a.button.primary', { href: `${base}/new` }, 'New template')) : null),
      table(headers, rows, manage
        ? 'No template yet. A template is a script and how to run it: create the first one with "New template".'
        : 'No template yet. Project managers create them.')));
}

/** Labels as small chips (a runner must carry every one of them to run the template). */
export function labels(list) {
  if (!list || !list.length) return h('span.muted', 'any runner');
  return h('span.labels', { title: 'Runs only on runners with all of these labels' }, list.map((l) => h('code.chip', l)));
}
