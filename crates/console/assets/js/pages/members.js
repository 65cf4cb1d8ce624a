// A project's members and their roles. Every member reads the list; owners (and administrators)
// add members, change roles and remove members. A project keeps at least one owner: the API
// answers 409 to a change that would leave none, and the page shows that answer as it is.

import { h, field, fill, table, errorBox, actionButton } from '../dom.js';
import * as api from '../api.js';
import * as project from '../project.js';

export const ROLES = ['viewer', 'runner', 'manager', 'owner'];

/** What each role may do (API.md, "Roles"); each role may also do everything of the ones before. */
export const MAY = {
  viewer: 'Reads the project, its templates, tasks, logs, schedules, secret names and members.',
  runner: 'Also runs and cancels tasks.',
  manager: 'Also creates, changes and deletes templates, schedules and secrets.',
  owner: 'Also changes the project, its members and roles; mints its runner registration tokens; reads its audit log.',
};

export async function render(main, ctx) {
  const pid = Number(ctx.params.pid);
  const base = `/projects/${pid}/members`;
  const { project: p, header } = await project.load(ctx, '/members');
  const owner = api.may(p.role, 'owner', ctx.me);
  let members = await api.all(base);

  const list = h('div.mid');
  const reload = async () => {
    members = await api.all(base);
    paint();
  };
  // A change to one's own membership may take away the right to be here: show the page anew.
  const changedSelf = (uid, removed) => {
    if (uid !== ctx.me.id || ctx.me.admin) return false;
    ctx.navigate(removed ? '/ui/' : location.pathname, { replace: true });
    return true;
  };

  const roleControl = (m) => {
    const sel = h('select', { 'aria-label': `Role of ${m.username}` },
      ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r)));
    const out = h('span.inline-error', { role: 'alert' });
    sel.addEventListener('change', async () => {
      sel.disabled = true;
      out.textContent = '';
      try {
        Object.assign(m, await api.put(`${base}/${m.user_id}`, { role: sel.value }));
        if (changedSelf(m.user_id, false)) return;
      } catch (e) {
        out.textContent = e.message;
        sel.value = m.role;
      } finally {
        sel.disabled = false;
      }
    });
    return h('span.action', sel, out);
  };

  const row = (m) => {
    const who = h('span.nowrap', m.username, h('span.muted', ` #${m.user_id}`), m.user_id === ctx.me.id ? h('span.muted', ' (you)') : null);
    if (!owner) return [who, m.role];
    return [who, roleControl(m),
      actionButton('Remove', async () => {
        await api.del(`${base}/${m.user_id}`);
        if (changedSelf(m.user_id, true)) return;
        members = members.filter((x) => x.user_id !== m.user_id);
        paint();
        refreshForm();
      }, { class: 'danger', aria: `Remove ${m.username}`, confirm: `Remove ${m.username} from ${p.name}?` })];
  };
  // Owners first, then by name.
  const rank = (m) => ROLES.indexOf(m.role);
  const paint = () => fill(list, table(owner ? ['Member', 'Role', ''] : ['Member', 'Role'],
    [...members].sort((a, b) => rank(b) - rank(a) || a.username.localeCompare(b.username)).map(row), 'No members.'));
  paint();

  // Administrators pick from every user; an owner who is not one types the user's id.
  const users = owner && ctx.me.admin ? await api.all('/users').catch(() => null) : null;
  let form = null;
  const refreshForm = (done) => {
    if (!owner) return;
    const fresh = addForm(pid, users, members, async (m) => {
      await reload();
      refreshForm(`${m.username} is now ${m.role}.`);
    }, done);
    if (form) form.replaceWith(fresh);
    form = fresh;
  };
  refreshForm();

  main.append(header,
    h('section', { 'aria-labelledby': 'members-title' },
      h('div.list-head', h('h2#members-title', 'Members'),
        h('p.summary', owner ? 'Change a role with its menu; it applies at once.' : 'Only owners change members and roles.')),
      list),
    h('div.split',
      form,
      rolesCard()));
}

function addForm(pid, users, members, added, done) {
  const role = h('select', { name: 'role' }, ROLES.map((r) => h('option', { value: r }, r)));
  let who;
  if (users) {
    const ids = new Set(members.map((m) => m.user_id));
    const free = users.filter((u) => !ids.has(u.id));
    who = free.length
      ? field('User', h('select', { name: 'user', required: true },
        free.map((u) => h('option', { value: u.id }, `${u.username} (#${u.id})`))))
      : h('p.muted', 'Every user is already a member. Create users under Users.');
  } else {
    who = field('User id', h('input', { name: 'user', type: 'number', min: 1, step: 1, required: true, inputmode: 'numeric' }),
      'Only administrators can list users: ask the person for their user id, which their account page shows.');
  }
  const out = h('div', done ? h('p.notice', { role: 'status' }, done) : null);
  const submit = h('button.primary', { type: 'submit' }, 'Add member');
  const form = h('form.card', { 'aria-labelledby': 'add-member' },
    h('h2#add-member', 'Add a member'),
    h('div.row', who, field('Role', role)),
    out, submit);
  if (users && !who.classList.contains('field')) submit.disabled = true;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    const uid = Number(form.elements.user.value);
    submit.disabled = true;
    try {
      await added(await api.put(`/projects/${pid}/members/${uid}`, { role: role.value }));
    } catch (err) {
      out.append(errorBox(err.status === 404 ? new Error(`There is no user #${uid}.`) : err));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function rolesCard() {
  return h('section.card', { 'aria-labelledby': 'roles-title' },
    h('h2#roles-title', 'What each role may do'),
    h('dl.facts', ROLES.map((r) => [h('dt', r), h('dd', MAY[r])])),
    h('p.hint', 'Administrators may do everything in every project, whatever their role.'));
}
