// A project's schedules: which template each fires, when (a cron expression in a time zone, or
// once at a time), whether it is on, and when it fires next. Managers create new ones.

import { h, fill, table, badge, ago, fullTime } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const [{ project: p, header }, schedules, names] = await Promise.all([
    project.load(ctx, '/schedules'),
    api.all(`/projects/${pid}/schedules`),
    project.templateNames(pid),
  ]);
  const manage = api.may(p.role, 'manager', ctx.me);
  const base = `/ui/projects/${pid}/schedules`;

  // The next due time of each enabled schedule, read one by one after the table is shown.
  const nextCells = new Map();
  const rows = schedules.sort((a, b) => a.id - b.id).map((s) => {
    const next = h('span.muted', s.enabled ? '…' : '–');
    nextCells.set(s.id, next);
    return [
      h('a', { href: `${base}/${s.id}` }, `#${s.id}`),
      names.has(s.template_id)
        ? h('a', { href: `/ui/projects/${pid}/templates/${s.template_id}` }, names.get(s.template_id))
        : h('span.muted', `template ${s.template_id} (deleted)`),
      s.cron ? h('code', s.cron) : h('span', 'once, ', h('time', { datetime: s.run_at }, inZone(s.run_at, s.timezone))),
      s.timezone || 'UTC',
      s.enabled ? badge('enabled', 'on') : badge('disabled', 'off'),
      next,
    ];
  });

  main.append(header,
    h('section', { 'aria-labelledby': 'schedules-title' },
      h('div.list-head', h('h2#schedules-title', 'Schedules'),
        h('p.summary', schedules.length === 1 ? '1 schedule' : `${schedules.length} schedules`),
        manage && names.size ? h('div.filters', h('a.button.primary', { href: `${base}/new` }, 'New schedule')) : null),
      table(['Schedule', 'Template', 'When', 'Time zone', 'Enabled', 'Next fire'], rows,
        !names.size && manage
          ? h('span', 'No schedule yet. A schedule fires a template: ', h('a', { href: `/ui/projects/${pid}/templates/new` }, 'create a template'), ' first.')
          : manage ? 'No schedule yet: "New schedule" fires a template on a cron expression or once at a set time.' : 'No schedule yet.')));

  await Promise.all(schedules.filter((s) => s.enabled).map(async (s) => {
    const cell = nextCells.get(s.id);
    try {
      const { times } = await api.get(`/projects/${pid}/schedules/${s.id}/next?count=1`);
      if (!times.length) return fill(cell, 'none');
      cell.classList.remove('muted');
      fill(cell, h('time', { datetime: times[0] }, fullTime(times[0])), h('small.muted', ' · ' + ago(new Date(times[0]))));
    } catch (e) {
      cell.title = e.message;
      fill(cell, 'unknown');
    }
  }));
}

/** A time as the clock of `tz` shows it (the zone a one-shot was set in). */
function inZone(iso, tz) {
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone: tz || 'UTC' }).format(new Date(iso));
  } catch {
    return fullTime(iso);
  }
}
