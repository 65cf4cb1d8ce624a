// Your projects with your role in each; administrators create new ones here.

import { h, field, table, errorBox } from '../dom.js';
import * as api from '../api.js';

export async function render(main, ctx) {
  const projects = await api.all('/projects');
  const list = h('div');
  const paint = () =>
    list.replaceChildren(table(['Project', 'Your role', 'Description'],
      projects.map((p) => [h('a', { href: '/ui/projects/' + p.id }, p.name), ctx.me.admin ? 'administrator' : p.role, p.description || '']),
      ctx.me.admin ? 'No project yet: create the first one below.' : 'You are not a member of any project yet; ask a project owner to add you.'));
  paint();
  main.append(h('header.page-head', h('h1', 'Projects')), list);
  if (ctx.me.admin) main.append(createForm(ctx));
}

function createForm(ctx) {
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const desc = h('input', { name: 'description', maxlength: 1000 });
  const par = h('input', { name: 'max_parallel', type: 'number', min: 0, value: 0, inputmode: 'numeric' });
  const out = h('div');
  const form = h('form.card', { 'aria-labelledby': 'new-project' },
    h('h2#new-project', 'New project'),
    h('div.row', field('Name', name), field('Description', desc),
      field('Parallel tasks', par, '0 = no limit')),
    out,
    h('button.primary', { type: 'submit' }, 'Create project'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      const body = { name: name.value.trim(), max_parallel: Number(par.value || 0) };
      if (desc.value.trim()) body.description = desc.value.trim();
      const p = await api.post('/projects', body);
      ctx.navigate('/ui/projects/' + p.id);
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return form;
}
