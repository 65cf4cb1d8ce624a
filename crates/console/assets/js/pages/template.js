// One template, new or existing: its script (an editor where Tab indents; Esc then Tab leaves),
// shell, environment, secrets, labels and limits. Managers save and delete it, roles that may run
// start a task from it, everyone else reads it. An error the API names a field for is shown under
// that field.

import { h, field, fill, errorBox, actionButton } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';
import { parseEnv } from './tasks.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const isNew = ctx.params.tid === 'new';
  const path = `/projects/${pid}/templates`;
  const [{ project: p }, t, secretNames] = await Promise.all([
    project.load(ctx, '/templates'),
    isNew ? null : api.get(`${path}/${ctx.params.tid}`),
    api.all(`/projects/${pid}/secrets`).then((s) => s.map((x) => x.name)).catch(() => []),
  ]);
  const manage = api.may(p.role, 'manager', ctx.me);
  const mayRun = !isNew && api.may(p.role, 'runner', ctx.me);
  const ro = !manage;
  const v = t || { name: '', script: '#!/bin/bash\nset -euo pipefail\n\n', shell: 'bash', env: {}, secrets: [], labels: [], timeout_seconds: null, max_attempts: 1, max_parallel: 0, priority: 0 };

  const c = {
    name: h('input', { name: 'name', required: true, maxlength: 100, value: v.name, readonly: ro, autocomplete: 'off' }),
    script: codeEditor(h('textarea.code.mono', { name: 'script', rows: 14, spellcheck: 'false', autocapitalize: 'none', readonly: ro, value: v.script })),
    shell: h('select', { name: 'shell', disabled: ro }, ['bash', 'sh'].map((s) => h('option', { value: s, selected: s === v.shell }, s))),
    env: h('textarea.mono', { name: 'env', rows: 4, spellcheck: 'false', autocapitalize: 'none', readonly: ro, placeholder: ro ? null : 'NAME=value, one per line',
      value: Object.entries(v.env || {}).map(([k, x]) => `${k}=${x}`).join('\n') }),
    labels: h('input', { name: 'labels', readonly: ro, autocapitalize: 'none', spellcheck: 'false', placeholder: ro ? null : 'e.g. linux, docker', value: (v.labels || []).join(', ') }),
    timeout_seconds: h('input', { name: 'timeout_seconds', type: 'number', min: 0, max: 604800, inputmode: 'numeric', readonly: ro, value: v.timeout_seconds || 0 }),
    max_attempts: h('input', { name: 'max_attempts', type: 'number', min: 1, max: 100, inputmode: 'numeric', readonly: ro, value: v.max_attempts ?? 1 }),
    max_parallel: h('input', { name: 'max_parallel', type: 'number', min: 0, max: 100000, inputmode: 'numeric', readonly: ro, value: v.max_parallel ?? 0 }),
    priority: h('input', { name: 'priority', type: 'number', min: -1000, max: 1000, inputmode: 'numeric', readonly: ro, value: v.priority ?? 0 }),
  };
  // Secrets: one box per secret of the project, and any the template names that the project lacks.
  const chosen = new Set(v.secrets || []);
  const all = [...new Set([...secretNames, ...chosen])].sort();
  const boxes = all.map((n) => h('input', { type: 'checkbox', value: n, checked: chosen.has(n), disabled: ro }));
  c.secrets = h('fieldset.field.choices', { id: 'f-secrets' },
    h('legend', 'Secrets'),
    all.length
      ? h('div.checks', boxes.map((b) => h('label.check', b, h('code', b.value),
        secretNames.includes(b.value) ? null : h('small.error-text', ' not set in this project'))))
      : h('p.hint', 'This project has no secrets yet. ', manage ? h('a', { href: `/ui/projects/${pid}/secrets` }, 'Add one') : null),
    h('small.hint', 'Each chosen secret reaches the script as an environment variable of the same name.'));

  const status = h('span.muted', { role: 'status' });
  const out = h('div');
  const body = () => {
    const labels = c.labels.value.split(/[\s,]+/).filter(Boolean);
    let env;
    try {
      env = parseEnv(c.env.value);
    } catch (e) {
      throw fieldError('env', e.message);
    }
    return {
      name: c.name.value.trim(),
      script: c.script.value,
      shell: c.shell.value,
      env,
      secrets: boxes.filter((b) => b.checked).map((b) => b.value),
      labels,
      timeout_seconds: num(c.timeout_seconds, 'timeout_seconds'),
      max_attempts: num(c.max_attempts, 'max_attempts'),
      max_parallel: num(c.max_parallel, 'max_parallel'),
      priority: num(c.priority, 'priority'),
    };
  };
  let saved = isNew ? null : JSON.stringify(body());

  const save = h('button.primary', { type: 'submit' }, isNew ? 'Create template' : 'Save');
  const form = h('form.card', { 'aria-labelledby': 'tpl-title', novalidate: true, class: ro ? 'ro' : null },
    h('div.row', field('Name', c.name), narrow(field('Shell', c.shell))),
    field('Script', c.script, ro ? null : 'Tab indents; press Esc, then Tab, to move on. Ctrl+S saves.'),
    h('div.row',
      field('Environment', c.env, 'NAME=value lines, given to every run; a run may add or override some.'),
      c.secrets),
    h('div.row',
      field('Labels', c.labels, 'Only runners with all these labels run it. Empty: any runner.'),
      field('Timeout (seconds)', c.timeout_seconds, '0 = no limit'),
      field('Max attempts', c.max_attempts, 'A lost or timed-out run is tried again until this many.'),
      field('Parallel runs', c.max_parallel, '0 = no limit'),
      field('Priority', c.priority, '-1000 to 1000; higher runs first')),
    out,
    h('div.actions',
      manage ? save : null,
      mayRun ? actionButton('Run', async () => {
        if (manage && saved !== null && dirty() && !window.confirm('This runs the saved template, without your unsaved changes. Run it?')) return;
        const task = await api.post(`/projects/${pid}/tasks`, { template_id: t.id });
        ctx.navigate(`/ui/projects/${pid}/tasks/${task.id}`);
      }) : null,
      !isNew && manage ? h('a.button', { href: `/ui/projects/${pid}/schedules/new?template_id=${t.id}` }, 'Schedule…') : null,
      status,
      h('div.spacer'),
      !isNew && manage ? actionButton('Delete', async () => {
        await api.del(`${path}/${t.id}`);
        ctx.navigate(`/ui/projects/${pid}/templates`);
      }, { class: 'danger', confirm: `Delete the template "${t.name}"? Its schedules stop firing; past tasks stay.` }) : null));
  const dirty = () => {
    try {
      return JSON.stringify(body()) !== saved;
    } catch {
      return true;
    }
  };

  form.addEventListener('input', () => fill(status));
  form.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's' && manage) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!manage) return;
    clearErrors(form);
    out.replaceChildren();
    save.disabled = true;
    try {
      const b = body();
      if (isNew) {
        const created = await api.post(path, b);
        ctx.navigate(`/ui/projects/${pid}/templates/${created.id}`, { replace: true });
        return;
      }
      const updated = await api.patch(`${path}/${t.id}`, b);
      Object.assign(t, updated);
      saved = JSON.stringify(body());
      fill(title, updated.name);
      fill(status, 'Saved.');
    } catch (err) {
      showError(err, form, out);
    } finally {
      save.disabled = false;
    }
  });

  const title = h('h1#tpl-title', isNew ? 'New template' : v.name);
  fill(main,
    h('header.page-head',
      h('p.crumbs', h('a', { href: '/ui/' }, 'Projects'), ' / ', h('a', { href: `/ui/projects/${pid}` }, p.name), ' / ',
        h('a', { href: `/ui/projects/${pid}/templates` }, 'Templates'), ' / '),
      h('div.title-row', title, ro ? h('span.role', { title: 'Changing templates needs the manager role' }, 'read only') : null)),
    form);
  if (isNew) c.name.focus();
}

function narrow(el) {
  el.classList.add('narrow');
  return el;
}

/** A number input's value, or a field error naming it. */
function num(input, name) {
  const n = Number(input.value || 0);
  if (!Number.isInteger(n)) throw fieldError(name, 'must be a whole number');
  return n;
}

function fieldError(name, message) {
  const e = new Error(message);
  e.field = name;
  return e;
}

/**
 * Shows an error under the control it concerns: the API names the field at the start of its
 * message (`name`: … or name: …; `env.X` is the env field); otherwise the error goes to `out`.
 */
export function showError(err, form, out) {
  const m = /^`?([a-z_]+)[^`:\s]*`?: /.exec(err.message || '');
  const name = err.field || (m && m[1]);
  const control = name && form.querySelector(`[name="${name}"], #f-${name}`);
  if (!control) {
    out.replaceChildren(errorBox(err));
    return;
  }
  markField(control, err.field ? `${name}: ${err.message}` : err.message.replaceAll('`', ''));
  (control.matches('fieldset') ? control.querySelector('input') || control : control).focus();
}

/**
 * Marks `control` invalid with `message` under its field (or clears it when empty); `role` is
 * 'status' for messages that follow typing, which should not interrupt.
 */
export function markField(control, message, role = 'alert') {
  const box = control.closest('.field') || control.parentElement;
  let el = box.querySelector(':scope > .field-error');
  if (!message) {
    el?.remove();
    control.removeAttribute('aria-invalid');
    return;
  }
  if (!el) {
    el = h('small.field-error', { id: (control.id || 'f-' + Math.random().toString(36).slice(2, 9)) + '-error', role });
    box.append(el);
  }
  fill(el, message);
  control.setAttribute('aria-invalid', 'true');
  const ids = new Set((control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean));
  ids.add(el.id);
  control.setAttribute('aria-describedby', [...ids].join(' '));
}

export function clearErrors(form) {
  form.querySelectorAll('[aria-invalid="true"]').forEach((c) => c.removeAttribute('aria-invalid'));
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
}

/**
 * Makes a textarea indent with Tab (a tab character; Shift+Tab still moves back). Esc lets the
 * next Tab leave the field as usual, so keyboard users are never trapped.
 */
export function codeEditor(area) {
  let release = false;
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      release = true;
      return;
    }
    if (e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !release && !area.readOnly) {
      e.preventDefault();
      // insertText keeps the browser's undo history; setRangeText is the fallback.
      if (!document.execCommand || !document.execCommand('insertText', false, '\t')) {
        area.setRangeText('\t', area.selectionStart, area.selectionEnd, 'end');
        area.dispatchEvent(new Event('input', { bubbles: true }));
      }
      return;
    }
    if (e.key !== 'Shift') release = false;
  });
  area.addEventListener('blur', () => (release = false));
  return area;
}
