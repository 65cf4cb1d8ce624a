// One task: its status and timings, why it waits, its attempts, and its log following the
// running script live. The log comes over the WebSocket topic `task:<id>:log` with the last line
// held as resume point, so a reconnect (to any node) continues exactly after it.

import { h, fill, badge, fullTime, span, between, errorBox, actionButton, table } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';
import { ACTIVE } from '../tasklist.js';
import { LogView } from '../logview.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const id = Number(ctx.params.id);
  const base = `/projects/${pid}/tasks/${id}`;
  const [{ project: p }, first, templates] = await Promise.all([
    project.load(ctx, null),
    api.get(base),
    api.all(`/projects/${pid}/templates`).catch(() => []),
  ]);
  let task = first;
  const tname = (templates.find((t) => t.id === task.template_id) || {}).name || `template ${task.template_id}`;
  const mayRun = api.may(p.role, 'runner', ctx.me);

  const title = h('div.title-row');
  const facts = h('dl.facts');
  const attempts = h('div');
  const errors = h('div');
  const follow = h('input', { type: 'checkbox', id: 'follow', checked: true });
  const count = h('span.muted', { 'aria-live': 'off' });
  const ended = h('span.muted');
  const log = new LogView({ onFollow: (on) => (follow.checked = on) });
  follow.addEventListener('change', () => log.setFollow(follow.checked));

  const paint = () => {
    paintTitle();
    paintFacts();
  };
  // The title holds the Cancel button: redrawn only when the task changes, not every second.
  const paintTitle = () => {
    fill(title,
      h('h1', `Task #${task.id}`, h('span.muted', ' · ', tname)),
      badge(task.status),
      task.cancel_requested && ACTIVE.has(task.status) ? h('span.muted', 'cancelling…') : null,
      h('div.spacer'),
      mayRun && ACTIVE.has(task.status) && !task.cancel_requested
        ? actionButton('Cancel', async () => {
          take(await api.post(base + '/cancel'));
        }, { class: 'danger', confirm: `Cancel task #${task.id}?` })
        : null);
  };
  const paintFacts = () => {
    const ran = task.started_at ? span(between(task.started_at, task.finished_at)) : '–';
    const rows = [
      ['Status', task.status.replace('_', ' ')],
      task.status === 'queued' ? ['Waiting because', h('span.why', task.queue_reason || 'it is next in line')] : null,
      ['Attempt', `${task.attempt || 1}`],
      ['Runner', task.runner_id ? `runner ${task.runner_id}` : '–'],
      ['Created', fullTime(task.created_at)],
      ['Started', fullTime(task.started_at)],
      ['Finished', fullTime(task.finished_at)],
      ['Ran for', ran],
      task.started_at ? ['Waited', span(between(task.created_at, task.started_at))] : null,
      ['Exit code', task.exit_code ?? '–'],
      task.error ? ['Error', h('span.error-text', task.error)] : null,
      ['Priority', String(task.priority ?? 0)],
      ['Started by', task.schedule_id ? h('a', { href: `/ui/projects/${pid}/schedules/${task.schedule_id}` }, `schedule ${task.schedule_id}`) : `user ${task.created_by ?? ''}`],
    ].filter(Boolean);
    fill(facts, rows.map(([k, v]) => [h('dt', k), h('dd', v)]));
    fill(count, `${log.length.toLocaleString()} lines`);
  };
  const take = (t) => {
    if (t.id !== id || t.version < task.version) return;
    const was = task.status;
    task = t;
    paint();
    if (was !== t.status && !ACTIVE.has(t.status)) loadAttempts();
  };

  async function loadAttempts() {
    try {
      const page = await api.get(base + '/attempts?limit=100');
      fill(attempts, table(['Attempt', 'Runner', 'Node', 'Ended as', 'Exit code', 'Why', 'Started', 'Ended'],
        page.items.map((a) => [String(a.attempt), a.runner_name || (a.runner_id ? `runner ${a.runner_id}` : '–'),
          a.node_id || '–', badge(a.status), a.exit_code ?? '–', a.error || '', fullTime(a.started_at), fullTime(a.finished_at)]),
        ACTIVE.has(task.status) ? 'This is the first attempt.' : 'No attempt has ended.'));
    } catch (e) {
      fill(attempts, errorBox(e));
    }
  }

  const raw = h('a.button', { href: `/api/v1${base}/log/raw`, download: `task-${id}.log` }, 'Download raw');
  main.append(
    h('header.page-head', h('p.crumbs', h('a', { href: '/ui/' }, 'Projects'), ' / ', h('a', { href: `/ui/projects/${pid}` }, p.name), ' / '), title),
    errors,
    h('div.task-grid',
      h('section.card', { 'aria-labelledby': 'facts-title' }, h('h2#facts-title', 'Details'), facts),
      h('section.card', { 'aria-labelledby': 'attempts-title' }, h('h2#attempts-title', 'Attempts'), attempts)),
    h('section.logbox', { 'aria-labelledby': 'log-title' },
      h('div.log-head', h('h2#log-title', 'Output'), count, ended, h('div.spacer'),
        h('label.check', follow, ' Follow output'), raw),
      log.el));
  paint();
  loadAttempts();

  const stopTask = ctx.live.subscribe(`project:${pid}`, {
    resume: () => Date.parse(task.updated_at || task.created_at) - 5000,
    event: (m) => m.data && take(m.data),
    error: (e) => errors.replaceChildren(errorBox(e)),
  });
  const stopLog = ctx.live.subscribe(`task:${id}:log`, {
    resume: () => log.lastSeq,
    event: (m) => {
      if (m.type === 'task.log') {
        log.add(m.data.lines);
        fill(count, `${log.length.toLocaleString()} lines`);
      } else if (m.type === 'task.log.end') {
        fill(ended, ' · complete');
      }
    },
    error: (e) => errors.replaceChildren(errorBox(e)),
  });
  // The task may have changed while the socket was down: read it again when it is back.
  let wasLive = true;
  const stopWatch = ctx.live.watch((s) => {
    if (s === 'live' && !wasLive) api.get(base).then(take, () => {});
    wasLive = s === 'live';
  });
  const tick = setInterval(() => ACTIVE.has(task.status) && paintFacts(), 1000);
  return () => {
    stopTask();
    stopLog();
    stopWatch();
    clearInterval(tick);
  };
}
