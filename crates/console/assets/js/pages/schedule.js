// One schedule, new or existing: the template it fires, on a cron expression in a time zone or
// once at a set time, and what happens after downtime or while the previous task still runs. The
// next five due times are previewed as the expression is typed (the server parses it, so the
// preview is exactly what will fire), shown in the schedule's zone and in the reader's. An
// existing schedule lists its fires: each due time with the task it started, or why it was skipped.

import { h, field, fill, table, badge, errorBox, actionButton, ago, fullTime } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';
import { showError, markField, clearErrors } from './template.js';

const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const isNew = ctx.params.sid === 'new';
  const path = `/projects/${pid}/schedules`;
  const [{ project: p }, s, templates] = await Promise.all([
    project.load(ctx, '/schedules'),
    isNew ? null : api.get(`${path}/${ctx.params.sid}`),
    api.all(`/projects/${pid}/templates`),
  ]);
  const manage = api.may(p.role, 'manager', ctx.me);
  const ro = !manage;
  const wanted = s ? s.template_id : Number(ctx.query.get('template_id')) || null;
  const v = s || { template_id: wanted, cron: '', timezone: LOCAL_ZONE, run_at: null, enabled: true, catch_up: 'latest', overlap: 'allow' };
  const tz0 = v.timezone || 'UTC';

  const c = {
    template_id: h('select', { name: 'template_id', required: true, disabled: ro },
      s && !templates.some((t) => t.id === s.template_id) ? h('option', { value: s.template_id }, `template ${s.template_id} (deleted)`) : null,
      templates.map((t) => h('option', { value: t.id, selected: t.id === v.template_id }, t.name))),
    cron: h('input.mono', { name: 'cron', value: v.cron || '', readonly: ro, placeholder: '0 3 * * *', spellcheck: 'false', autocapitalize: 'none', autocomplete: 'off' }),
    run_at: h('input', { name: 'run_at', type: 'datetime-local', step: 1, readonly: ro, value: v.run_at ? toZoned(v.run_at, tz0) : '' }),
    timezone: h('input', { name: 'timezone', list: 'tz-list', value: tz0, readonly: ro, spellcheck: 'false', autocapitalize: 'none', autocomplete: 'off' }),
    enabled: h('input', { name: 'enabled', type: 'checkbox', checked: v.enabled, disabled: ro }),
    catch_up: h('select', { name: 'catch_up', disabled: ro },
      h('option', { value: 'latest', selected: v.catch_up === 'latest' }, 'Fire once, for the latest missed time'),
      h('option', { value: 'none', selected: v.catch_up === 'none' }, 'Skip the missed times')),
    overlap: h('select', { name: 'overlap', disabled: ro },
      h('option', { value: 'allow', selected: v.overlap === 'allow' }, 'Fire anyway'),
      h('option', { value: 'skip', selected: v.overlap === 'skip' }, 'Skip this fire (listed as skipped)')),
  };
  const once = Boolean(s && !s.cron);
  const kinds = ['cron', 'once'].map((k) => h('input', { type: 'radio', name: 'kind', value: k, checked: (k === 'once') === once, disabled: ro }));
  const kind = () => kinds.find((r) => r.checked).value;
  const zones = h('datalist#tz-list', zoneNames().map((z) => h('option', { value: z })));

  const cronField = field('Cron expression', c.cron,
    'minute hour day-of-month month day-of-week, or 6 fields with seconds first. "0 3 * * 1-5": 03:00 on weekdays; "*/15 * * * *": every quarter hour.');
  const runAtField = field('Date and time', c.run_at, 'In the time zone below.');
  const status = h('span.muted', { role: 'status' });
  const out = h('div');
  const save = h('button.primary', { type: 'submit' }, isNew ? 'Create schedule' : 'Save');

  const form = h('form.card', { 'aria-labelledby': 'sched-title', novalidate: true, class: ro ? 'ro' : null },
    h('div.row', field('Template', c.template_id),
      h('fieldset.field.choices', h('legend', 'Fires'),
        h('div.checks', h('label.check', kinds[0], 'Repeatedly, on a cron expression'), h('label.check', kinds[1], 'Once, at a set time')))),
    cronField, runAtField,
    field('Time zone', c.timezone, `An IANA zone name such as Europe/Paris or UTC; yours is ${LOCAL_ZONE}.`), zones,
    h('div.row',
      field('After downtime', c.catch_up, 'Due times missed while no scheduler ran.'),
      field('If the previous task still runs', c.overlap)),
    h('label.check.enabled', c.enabled, 'Enabled'),
    out,
    manage ? h('div.actions.form-foot', save, status, h('div.spacer'),
      s ? actionButton('Delete', async () => {
        await api.del(`${path}/${s.id}`);
        ctx.navigate(`/ui/projects/${pid}/schedules`);
      }, { class: 'danger', confirm: `Delete schedule #${s.id}? It stops firing; the tasks it started stay.` }) : null) : null);

  // The preview: the next five due times of what the form says now.
  const times = h('ol.times');
  const previewNote = h('p.hint', 'The schedule is off: these are the times it would fire at once enabled.');
  const preview = h('section.card', { 'aria-labelledby': 'preview-title' },
    h('h2#preview-title', 'Next fire times'), previewNote, h('div', { 'aria-live': 'polite' }, times));
  let timer = 0;
  let asked = 0;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  };
  async function refresh() {
    const mine = ++asked;
    const tz = c.timezone.value.trim() || 'UTC';
    markField(c.cron, '');
    markField(c.timezone, '');
    previewNote.hidden = c.enabled.checked;
    if (kind() === 'once') return paintOnce(tz);
    const cron = c.cron.value.trim();
    if (!cron) return fill(times, h('li.muted', 'Type a cron expression to see when it fires.'));
    try {
      const r = await api.get(api.q(`${path}/preview`, { cron, timezone: tz, count: 5 }));
      if (mine === asked) paintTimes(r.times, tz, cron);
    } catch (e) {
      if (mine !== asked) return;
      const m = /^`?(cron|timezone)`?:/.exec(e.message || '');
      if (e.status === 400 && m) {
        markField(c[m[1]], e.message.replaceAll('`', ''), 'status');
        return fill(times, h('li.muted', 'No times: the expression has a problem (see above).'));
      }
      // The server cannot preview unsaved expressions: what is saved can still be shown.
      if (s && s.cron === cron && (s.timezone || 'UTC') === tz) {
        try {
          const r = await api.get(`${path}/${s.id}/next?count=5`);
          if (mine === asked) paintTimes(r.times, tz, cron);
          return;
        } catch {
          /* fall through to the message */
        }
      }
      fill(times, h('li', h('span.error-text', 'No preview from the server: ' + e.message)));
    }
  }
  let shownFirst = 0;
  const paintTimes = (list, tz, cron) => {
    shownFirst = list.length ? Date.parse(list[0]) : 0;
    if (!list.length) return fill(times, h('li.muted', 'Never: no date matches this expression.'));
    const seconds = cron.split(/\s+/).length === 6;
    fill(times, list.map((iso) => moment(iso, tz, seconds)));
  };
  const paintOnce = (tz) => {
    if (!c.run_at.value) return fill(times, h('li.muted', 'Pick a date and time.'));
    if (!validZone(tz)) return fill(times, h('li.muted', `"${tz}" is not a time zone this browser knows.`));
    const at = fromZoned(c.run_at.value, tz);
    fill(times, moment(at.toISOString(), tz, true),
      at < Date.now() ? h('li.muted', c.catch_up.value === 'latest'
        ? 'This time has passed: saved like this, it fires at once.'
        : 'This time has passed: saved like this, it never fires (missed times are skipped).') : null);
  };
  const showKind = () => {
    cronField.hidden = kind() !== 'cron';
    runAtField.hidden = kind() !== 'once';
  };
  for (const el of [c.cron, c.timezone, c.run_at]) el.addEventListener('input', later);
  for (const el of [...kinds, c.enabled, c.catch_up]) el.addEventListener('change', () => {
    showKind();
    later();
  });
  form.addEventListener('input', () => fill(status));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!manage) return;
    clearErrors(form);
    out.replaceChildren();
    const tz = c.timezone.value.trim() || 'UTC';
    const body = { template_id: Number(c.template_id.value), timezone: tz, enabled: c.enabled.checked, catch_up: c.catch_up.value, overlap: c.overlap.value };
    const bad = (control, message) => {
      markField(control, message);
      control.focus();
    };
    if (!body.template_id) return bad(c.template_id, 'template_id: choose a template');
    if (kind() === 'cron') body.cron = c.cron.value.trim();
    else if (!c.run_at.value) return bad(c.run_at, 'run_at: pick a date and time');
    else if (!validZone(tz)) return bad(c.timezone, `timezone: unknown time zone "${tz}"`);
    else body.run_at = fromZoned(c.run_at.value, tz).toISOString();
    save.disabled = true;
    try {
      if (!s) {
        const created = await api.post(path, body);
        ctx.navigate(`/ui/projects/${pid}/schedules/${created.id}`, { replace: true });
        return;
      }
      Object.assign(s, await api.patch(`${path}/${s.id}`, body));
      c.enabled.checked = s.enabled;
      fill(status, 'Saved.');
      later();
      loadFires(true);
    } catch (err) {
      showError(err, form, out);
    } finally {
      save.disabled = false;
    }
  });

  // Fires: newest first, a page at a time.
  const fires = h('div');
  const more = h('button', { type: 'button', hidden: true }, 'Older fires');
  let before = null;
  const fireRows = [];
  async function loadFires(reset) {
    if (!s) return;
    try {
      const page = await api.get(api.q(`${path}/${s.id}/fires`, { limit: 20, before: reset ? null : before }));
      if (reset) fireRows.length = 0;
      fireRows.push(...page.items);
      before = page.next;
      more.hidden = before === null || before === undefined;
      fill(fires, table(['Due', 'Outcome', 'Task', 'Why'], fireRows.map((f) => [
        h('span', h('time', { datetime: f.due_at }, fullTime(f.due_at)), h('small.muted', ' · ' + ago(new Date(f.due_at)))),
        badge(f.status),
        f.task_id ? h('a', { href: `/ui/projects/${pid}/tasks/${f.task_id}` }, `#${f.task_id}`) : '–',
        f.reason || '',
      ]), 'It has not fired yet.'));
    } catch (e) {
      fill(fires, errorBox(e));
    }
  }
  more.addEventListener('click', () => loadFires(false));

  const title = h('h1#sched-title', s ? `Schedule #${s.id}` : 'New schedule');
  fill(main,
    h('header.page-head',
      h('p.crumbs', h('a', { href: '/ui/' }, 'Projects'), ' / ', h('a', { href: `/ui/projects/${pid}` }, p.name), ' / ',
        h('a', { href: `/ui/projects/${pid}/schedules` }, 'Schedules'), ' / '),
      h('div.title-row', title, ro ? h('span.role', { title: 'Changing schedules needs the manager role' }, 'read only') : null)),
    templates.length || s ? null : h('p.notice', 'This project has no template to schedule yet. ',
      h('a', { href: `/ui/projects/${pid}/templates/new` }, 'Create one'), ' first.'),
    h('div.sched-grid', form, preview),
    s ? h('section.fires', { 'aria-labelledby': 'fires-title' },
      h('div.list-head', h('h2#fires-title', 'Fires'), h('p.summary', 'Each due time, with the task it started or why it was skipped.')),
      fires, more) : null);
  showKind();
  refresh();
  loadFires(true);
  if (!s && manage) c.template_id.focus();

  // A fire starts a task: follow the project's tasks to show new fires as they happen.
  let reload = 0;
  const stop = s ? ctx.live.subscribe(`project:${pid}`, {
    event: (m) => {
      if (m.type !== 'task.created' || !m.data || m.data.schedule_id !== s.id) return;
      clearTimeout(reload);
      reload = setTimeout(() => {
        loadFires(true);
        if (kind() === 'cron') refresh();
      }, 300);
    },
  }) : () => {};
  // Skipped fires start no task: look again now and then while the first page is what is shown;
  // and move the preview on once its first time has passed.
  const poll = setInterval(() => {
    if (document.visibilityState !== 'visible') return;
    if (s && s.enabled && fireRows.length <= 20) loadFires(true);
    if (kind() === 'cron' && shownFirst && shownFirst < Date.now()) refresh();
  }, 15000);
  return () => {
    clearTimeout(timer);
    clearTimeout(reload);
    clearInterval(poll);
    stop();
  };
}

/** One due time as a list item: in the schedule's zone, and in the reader's when it differs. */
function moment(iso, tz, seconds) {
  const d = new Date(iso);
  const opts = { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: seconds ? '2-digit' : undefined, timeZoneName: 'short' };
  const there = format(d, { ...opts, timeZone: validZone(tz) ? tz : 'UTC' });
  const here = tz === LOCAL_ZONE ? null : format(d, { ...opts, year: undefined });
  return h('li', h('time', { datetime: iso }, there),
    h('small.muted', here ? `${here} your time · ` : null, ago(d)));
}

function format(d, opts) {
  return new Intl.DateTimeFormat(undefined, opts).format(d);
}

function zoneNames() {
  try {
    const z = Intl.supportedValuesOf('timeZone');
    return z.includes('UTC') ? z : ['UTC', ...z];
  } catch {
    return ['UTC', LOCAL_ZONE];
  }
}

function validZone(tz) {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock fields of `t` (ms) in `tz`, as if they were UTC (ms). */
function wall(t, tz) {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(t));
  const f = Object.fromEntries(parts.map((x) => [x.type, Number(x.value)]));
  return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second);
}

/** A `datetime-local` value read in `tz` → the instant (a Date). */
function fromZoned(local, tz) {
  const [date, time = '00:00'] = local.split('T');
  const [y, mo, d] = date.split('-').map(Number);
  const [hh, mi, ss = 0] = time.split(':').map(Number);
  const target = Date.UTC(y, mo - 1, d, hh, mi, Math.floor(ss));
  // Two rounds find the offset in force at that local time (also across a change of offset).
  let t = target - (wall(target, tz) - target);
  t = target - (wall(t, tz) - t);
  return new Date(t);
}

/** An instant (RFC 3339) → the `datetime-local` value that shows it in `tz`. */
function toZoned(iso, tz) {
  const w = new Date(wall(Date.parse(iso), validZone(tz) ? tz : 'UTC'));
  return w.toISOString().slice(0, 19);
}
