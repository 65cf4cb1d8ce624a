// A project's secrets: names and times only — the API never returns a value, so neither does this
// page. Managers add a secret, replace its value, or delete it. Values are typed into password
// fields (or a hidden-by-default text area for multi-line values such as keys) and cleared as
// soon as they were sent.

import { h, field, fill, table, actionButton, when } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';
import { showError, clearErrors } from './template.js';

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const path = `/projects/${pid}/secrets`;
  const [{ project: p, header }, first] = await Promise.all([project.load(ctx, '/secrets'), api.all(path)]);
  const manage = api.may(p.role, 'manager', ctx.me);
  let secrets = first;

  const list = h('div');
  const status = h('p.muted.status-line', { role: 'status' });
  const reload = async () => {
    secrets = await api.all(path);
    paint();
  };
  const paint = () => {
    const headers = ['Name', 'Created', 'Value changed'];
    if (manage) headers.push(h('span.visually-hidden', 'Actions'));
    secrets.sort((a, b) => a.name.localeCompare(b.name));
    fill(list, table(headers, secrets.map((s) => {
      const cells = [h('code', s.name), when(s.created_at), when(s.updated_at || s.created_at)];
      if (manage) cells.push(actions(s));
      return cells;
    }), manage ? 'No secret yet. Add one below; templates then choose which secrets their scripts get.' : 'No secret yet.'));
  };

  // Replacing a value happens in place: the row's actions become a small form.
  const actions = (s) => {
    const cell = h('div.actions');
    const normal = () => fill(cell,
      h('button', { type: 'button', 'aria-label': `Replace the value of ${s.name}`, onclick: replace }, 'Replace value'),
      actionButton('Delete', async () => {
        await api.del(`${path}/${encodeURIComponent(s.name)}`);
        fill(status, `Deleted ${s.name}.`);
        await reload();
      }, { class: 'danger', aria: `Delete ${s.name}`, confirm: `Delete the secret ${s.name}? Templates that use it will fail to start until it is set again.` }));
    function replace() {
      const value = valueInput(`New value of ${s.name}`);
      const out = h('span.inline-error', { role: 'alert' });
      const form = h('form.actions', { 'aria-label': `Replace the value of ${s.name}` },
        value, h('button.primary', { type: 'submit' }, 'Save'), h('button', { type: 'button', onclick: cancel }, 'Cancel'), out);
      function cancel() {
        normal();
        cell.querySelector('button').focus();
      }
      form.addEventListener('keydown', (e) => e.key === 'Escape' && cancel());
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        fill(out);
        try {
          await api.put(`${path}/${encodeURIComponent(s.name)}`, { value: value.value });
          value.value = '';
          fill(status, `Replaced the value of ${s.name}.`);
          await reload();
        } catch (err) {
          fill(out, err.message);
          value.focus();
        }
      });
      fill(cell, form);
      value.focus();
    }
    normal();
    return cell;
  };
  paint();

  main.append(header,
    h('section.list-mid', { 'aria-labelledby': 'secrets-title' },
      h('div.list-head', h('h2#secrets-title', 'Secrets'),
        h('p.summary', 'Values are sealed on the server and never shown again, not even to owners.')),
      status, list),
    manage ? newForm(path, status, reload) : h('p.muted', 'Adding and changing secrets needs the manager role.'));
}

function newForm(path, status, reload) {
  const name = h('input', { name: 'name', required: true, maxlength: 100, autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', pattern: '[A-Za-z_][A-Za-z0-9_]*' });
  let value = valueInput();
  value.name = 'value';
  const multi = h('input', { type: 'checkbox' });
  const valueField = field('Value', value);
  valueField.append(h('label.check', multi, 'Multi-line value'));
  const out = h('div');
  // A password field holds one line; keys and certificates need a text area (blurred until focused).
  multi.addEventListener('change', () => {
    const next = multi.checked
      ? h('textarea.mono.secret-value', { name: 'value', rows: 5, spellcheck: 'false', autocomplete: 'off', autocapitalize: 'none' })
      : valueInput();
    next.name = 'value';
    next.id = value.id;
    next.value = value.value;
    value.replaceWith(next);
    value = next;
  });
  const form = h('form.card', { 'aria-labelledby': 'new-secret', novalidate: true },
    h('h2#new-secret', 'Add a secret'),
    h('div.row',
      field('Name', name, 'Letters, digits and _, not starting with a digit: the script reads it as $NAME.'),
      valueField),
    out,
    h('button.primary', { type: 'submit' }, 'Add secret'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    out.replaceChildren();
    try {
      const created = await api.post(path, { name: name.value.trim(), value: value.value });
      value.value = '';
      name.value = '';
      fill(status, `Added ${created.name}.`);
      await reload();
      name.focus();
    } catch (err) {
      showError(err, form, out);
    }
  });
  return form;
}

/** A password input for a secret's value (never remembered or filled in by the browser). */
function valueInput(label) {
  return h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false', required: true, 'aria-label': label, placeholder: label ? 'new value' : null });
}
