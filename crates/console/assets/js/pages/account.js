// Your account: who you are, a new password (your other sessions end), and your API tokens —
// made here, optionally narrowed to one project and a lower role, and shown only once.

import { h, field, fill, when, table, errorBox, actionButton, copy } from '../dom.js';
import * as api from '../api.js';

const ROLES = ['viewer', 'runner', 'manager', 'owner'];
const EXPIRY = [[86400, '1 day'], [7 * 86400, '7 days'], [30 * 86400, '30 days'], [90 * 86400, '90 days'], [365 * 86400, '1 year'], ['', 'never']];
const DEFAULT_EXPIRY = 30 * 86400;

export async function render(main, ctx) {
  const [tokens, projects] = await Promise.all([api.all('/tokens'), api.all('/projects')]);
  const me = ctx.me;
  main.append(
    h('header.page-head', h('h1', 'Your account'),
      h('p.muted', 'Signed in as ', h('strong', me.username), ` · user id ${me.id}`, me.admin ? ' · administrator' : '',
        '. Project owners add you to a project by this id.')),
    h('div.split.wide', passwordForm(), tokenSection(tokens, projects)));
}

function passwordForm() {
  const current = h('input', { name: 'current_password', type: 'password', required: true, autocomplete: 'current-password' });
  const pass = h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const again = h('input', { name: 'password_again', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const out = h('div');
  const submit = h('button.primary', { type: 'submit' }, 'Change password');
  const form = h('form.card', { 'aria-labelledby': 'password-title' },
    h('h2#password-title', 'Password'),
    field('Current password', current),
    field('New password', pass, 'At least 8 characters.'),
    field('New password again', again),
    h('p.hint', 'Changing it ends your other sessions (other browsers and devices); this one stays. API tokens keep working.'),
    out, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    if (pass.value !== again.value) {
      out.append(errorBox('The new passwords differ.'));
      again.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api.patch('/users/me', { current_password: current.value, password: pass.value });
      form.reset();
      out.append(h('p.notice', { role: 'status' }, 'Password changed. Your other sessions have ended.'));
    } catch (err) {
      const wrong = err.status === 400 && err.message.includes('current_password');
      out.append(errorBox(wrong ? 'The current password is not right.' : err));
      if (wrong) current.select();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function tokenSection(first, projects) {
  let tokens = first;
  const names = new Map(projects.map((p) => [p.id, p.name]));
  const list = h('div.mid');
  const paint = () => fill(list, table(['Token', 'Narrowed to', 'Created', 'Expires', ''],
    tokens.map((t) => [
      h('span.nowrap', h('strong', t.name), h('span.muted', ` #${t.id}`)),
      t.project_id || t.role
        ? [t.project_id ? names.get(t.project_id) || `project ${t.project_id}` : 'every project', t.role ? ` · at most ${t.role}` : '']
        : h('span.muted', 'your rights'),
      when(t.created_at),
      h('span.nowrap', t.expires_at ? when(t.expires_at) : h('span.muted', 'never')),
      actionButton('Delete', async () => {
        await api.del('/tokens/' + t.id);
        tokens = tokens.filter((x) => x.id !== t.id);
        paint();
      }, { class: 'danger', aria: `Delete token ${t.name}`, confirm: `Delete the token ${t.name}? Whatever uses it stops working at once.` }),
    ]), 'No API token yet.'));
  paint();

  const name = h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'deploy script' });
  const expires = h('select', { name: 'expires_in_seconds' }, EXPIRY.map(([s, t]) => h('option', { value: s, selected: s === DEFAULT_EXPIRY }, t)));
  const project = h('select', { name: 'project_id' }, h('option', { value: '' }, 'Every project I can see'),
    projects.map((p) => h('option', { value: p.id }, `${p.name} (${p.role})`)));
  const role = h('select', { name: 'role' }, h('option', { value: '' }, 'My own role'), ROLES.map((r) => h('option', { value: r }, `at most ${r}`)));
  const out = h('div');
  const submit = h('button.primary', { type: 'submit' }, 'Create token');
  const form = h('form', { 'aria-labelledby': 'new-token' },
    h('h2#new-token', 'New token'),
    h('div.row', field('Name', name), field('Expires in', expires)),
    h('div.row', field('Project', project), field('Role', role)),
    h('p.hint', 'A token acts with your rights at each request, narrowed to what you choose here: it never has more than you do.'),
    out, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    submit.disabled = true;
    try {
      const body = { name: name.value.trim() };
      if (expires.value) body.expires_in_seconds = Number(expires.value);
      if (project.value) body.project_id = Number(project.value);
      if (role.value) body.role = role.value;
      const t = await api.post('/tokens', body);
      tokens = [t, ...tokens];
      paint();
      name.value = '';
      out.append(shown(t));
    } catch (err) {
      out.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  return h('section.card', { 'aria-labelledby': 'tokens-title' },
    h('h2#tokens-title', 'API tokens'),
    h('p.muted', 'For scripts and tools: send ', h('code', 'Authorization: Bearer <token>'), '.'),
    list, h('hr'), form);
}

function shown(t) {
  const code = h('code.secret', t.token);
  const status = h('span.muted', { role: 'status' });
  const copyIt = async () => {
    status.textContent = (await copy(t.token, code)) ? 'Copied.' : 'Selected: press Ctrl+C to copy.';
  };
  return h('div.notice.once',
    h('p', h('strong', `Token ${t.name}: shown only this once.`), ' Keep it somewhere safe; if it is lost, delete it and create another.'),
    h('p', code),
    h('div.actions', h('button', { type: 'button', onclick: copyIt }, 'Copy token'), status));
}
