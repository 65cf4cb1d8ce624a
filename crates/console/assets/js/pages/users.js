// Users (administrators): the list, a new user, and per user a change of name, of the
// administrator flag or of the password (which ends that user's sessions), or deletion.

import { h, field, fill, badge, when, table, errorBox, actionButton } from '../dom.js';
import * as api from '../api.js';

export async function render(main, ctx) {
  if (!ctx.me.admin) {
    main.append(h('header.page-head', h('h1', 'Users')), h('p.notice', 'Only administrators manage users. Your own password and tokens are under your account.'));
    return;
  }
  let users = await api.all('/users');
  const list = h('div.mid');
  const editor = h('div');

  const paint = () => fill(list, table(['User', 'Role', 'Created', ''],
    users.map((u) => [
      [h('strong', u.username), h('span.muted', ` #${u.id}`), u.id === ctx.me.id ? h('span.muted', ' (you)') : null],
      u.admin ? badge('admin', 'administrator') : h('span.muted', 'member of projects'),
      when(u.created_at),
      h('div.actions',
        h('button', { type: 'button', 'aria-label': `Edit ${u.username}`, onclick: () => edit(u) }, 'Edit'),
        u.id === ctx.me.id ? null : actionButton('Delete', async () => {
          await api.del('/users/' + u.id);
          users = users.filter((x) => x.id !== u.id);
          if (editor.dataset.uid === String(u.id)) editor.replaceChildren();
          paint();
        }, { class: 'danger', aria: `Delete ${u.username}`, confirm: `Delete user ${u.username}? Their sessions and API tokens stop working, and they leave every project.` })),
    ]), 'No users.'));

  const edit = (u) => {
    editor.dataset.uid = u.id;
    fill(editor, editForm(ctx, u, (changed) => {
      users = users.map((x) => (x.id === changed.id ? changed : x));
      paint();
    }, () => editor.replaceChildren()));
    editor.querySelector('input').focus();
  };
  paint();

  main.append(h('header.page-head', h('h1', 'Users'),
    h('p.muted', 'Administrators may do everything. Everyone else sees only the projects they are members of; project owners add them.')),
    list, editor, createForm((u) => {
      users = [...users, u].sort((a, b) => b.id - a.id);
      paint();
    }));
}

function createForm(added) {
  const name = h('input', { name: 'username', required: true, maxlength: 100, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const admin = h('input', { name: 'admin', type: 'checkbox' });
  const out = h('div');
  const form = h('form.card.spaced', { 'aria-labelledby': 'new-user' },
    h('h2#new-user', 'New user'),
    h('div.row',
      field('User name', name, 'Letters, digits and - _ . @'),
      field('Password', pass, 'At least 8 characters. Tell it to the user; they can change it under their account.')),
    h('p', h('label.check', admin, ' Administrator (may do everything, in every project)')),
    out,
    h('button.primary', { type: 'submit' }, 'Create user'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      const u = await api.post('/users', { username: name.value.trim(), password: pass.value, admin: admin.checked });
      added(u);
      form.reset();
      out.append(h('p.notice', { role: 'status' }, `Created ${u.username} (user id ${u.id}). Add them to projects under each project's Members.`));
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return form;
}

function editForm(ctx, u, changed, close) {
  const self = u.id === ctx.me.id;
  const name = h('input', { name: 'username', required: true, maxlength: 100, value: u.username, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', minlength: 8, autocomplete: 'new-password' });
  const admin = h('input', { name: 'admin', type: 'checkbox', checked: u.admin, disabled: self });
  const out = h('div');
  const form = h('form.card.spaced', { 'aria-labelledby': 'edit-user' },
    h('h2#edit-user', `Edit ${u.username}`),
    h('div.row',
      field('User name', name),
      field('New password', pass, self
        ? 'Leave empty to keep it. Your other sessions end; this one stays.'
        : 'Leave empty to keep it. A new password ends every session of this user.')),
    h('p', h('label.check', admin, ' Administrator'), self ? h('small.hint', ' — you cannot take away your own administrator rights') : null),
    out,
    h('div.actions', h('button.primary', { type: 'submit' }, 'Save'), h('button', { type: 'button', onclick: close }, 'Close')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    const body = {};
    if (name.value.trim() !== u.username) body.username = name.value.trim();
    if (pass.value) body.password = pass.value;
    if (!self && admin.checked !== u.admin) body.admin = admin.checked;
    if (!Object.keys(body).length) {
      out.append(h('p.muted', { role: 'status' }, 'Nothing changed.'));
      return;
    }
    try {
      const got = await api.patch('/users/' + u.id, body);
      changed(got);
      if (self) ctx.me.username = got.username;
      Object.assign(u, got);
      pass.value = '';
      out.append(h('p.notice', { role: 'status' }, body.password ? 'Saved; the old password no longer works and its sessions have ended.' : 'Saved.'));
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return form;
}
