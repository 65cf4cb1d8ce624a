// Shared pieces of task lists: the row of one task, statuses, and how a task's timing reads.

import { h, badge, when, span, between } from './dom.js';

export const STATUSES = ['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'lost'];
export const ACTIVE = new Set(['queued', 'assigned', 'running']);

/** How long the task ran (or has been running), or has waited. */
export function duration(t) {
  if (t.started_at) return span(between(t.started_at, t.finished_at));
  if (t.finished_at) return '–';
  return 'waiting ' + span(between(t.created_at));
}

export function statusCell(t) {
  return h('span.status', badge(t.status), t.cancel_requested && ACTIVE.has(t.status) ? h('small.muted', ' cancelling') : null,
    t.status === 'queued' && t.queue_reason ? h('small.why', t.queue_reason) : null);
}

export function row(t, pid, names) {
  const tr = h('tr', { dataset: { id: t.id, status: t.status } },
    h('td', h('a', { href: `/ui/projects/${pid}/tasks/${t.id}` }, '#' + t.id)),
    h('td', names.get(t.template_id) || 'template ' + t.template_id),
    h('td', statusCell(t)),
    h('td.num', t.attempt > 1 ? String(t.attempt) : ''),
    h('td', t.schedule_id ? h('span', { title: 'Fired by schedule ' + t.schedule_id }, 'schedule') : 'user ' + (t.created_by ?? '')),
    h('td', when(t.created_at)),
    h('td', duration(t)),
  );
  return tr;
}

export const HEADERS = ['Task', 'Template', 'Status', 'Attempt', 'Started by', 'Created', 'Duration'];
