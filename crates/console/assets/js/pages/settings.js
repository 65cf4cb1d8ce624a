// A project's settings, for its owners: name, description and how many of its tasks may run at
// once; and deleting the project, confirmed by typing its name.

import { h, field, fill, fullTime } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';
import { showError, clearErrors } from './template.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  let { project: p, header } = await project.load(ctx, '/settings');
  if (!api.may(p.role, 'owner', ctx.me)) {
    main.append(header, h('p.notice', 'Only the project\'s owners change its settings.'));
    return;
  }

  const name = h('input', { name: 'name', required: true, maxlength: 100, value: p.name, autocomplete: 'off' });
  const desc = h('textarea', { name: 'description', rows: 2, maxlength: 1000, value: p.description || '' });
  const par = h('input', { name: 'max_parallel', type: 'number', min: 0, max: 100000, inputmode: 'numeric', value: p.max_parallel ?? 0 });
  const status = h('span.muted', { role: 'status' });
  const out = h('div');
  const save = h('button.primary', { type: 'submit' }, 'Save');
  const form = h('form.card', { 'aria-labelledby': 'settings-title', novalidate: true },
    h('h2#settings-title', 'Project'),
    h('div.row', field('Name', name), field('Parallel tasks', par, 'How many of its tasks may run at once; 0 = no limit.')),
    field('Description', desc),
    out,
    h('div.actions', save, status),
    h('p.hint', `Project ${p.id}, created ${fullTime(p.created_at)}.`));
  form.addEventListener('input', () => fill(status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    out.replaceChildren();
    save.disabled = true;
    try {
      const n = Number(par.value || 0);
      const updated = await api.patch(`/projects/${pid}`, { name: name.value.trim(), description: desc.value.trim(), max_parallel: n });
      // The answer has no role: keep the one we know, and show the new name in the header.
      p = { ...p, ...updated };
      const fresh = project.header(ctx, p, '/settings');
      header.replaceWith(fresh);
      header = fresh;
      confirmName.placeholder = p.name;
      fill(confirmLabel, `Type the project's name, ${p.name}, to confirm`);
      check();
      fill(status, 'Saved.');
    } catch (err) {
      showError(err, form, out);
    } finally {
      save.disabled = false;
    }
  });

  // Deleting: the button works only once the name was typed exactly.
  const confirmName = h('input#confirm-name', { autocomplete: 'off', spellcheck: 'false', placeholder: p.name });
  const confirmLabel = h('label', { for: 'confirm-name' }, `Type the project's name, ${p.name}, to confirm`);
  const del = h('button.danger', { type: 'submit', disabled: true }, 'Delete this project');
  const delOut = h('div');
  const check = () => (del.disabled = confirmName.value !== p.name);
  confirmName.addEventListener('input', check);
  const danger = h('form.card.danger-zone', { 'aria-labelledby': 'delete-title' },
    h('h2#delete-title', 'Delete the project'),
    h('p', 'Deletes its templates, schedules, secrets, tasks and their logs, for good. It is refused while any of its tasks is unfinished: cancel those first.'),
    h('div.field', confirmLabel, confirmName),
    delOut,
    del);
  danger.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (confirmName.value !== p.name) return;
    delOut.replaceChildren();
    del.disabled = true;
    try {
      await api.del(`/projects/${pid}`);
      ctx.navigate('/ui/', { replace: true });
    } catch (err) {
      showError(err, danger, delOut);
      check();
    }
  });

  main.append(header, form, danger);
}
