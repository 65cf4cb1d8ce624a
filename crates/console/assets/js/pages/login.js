// Log in. On a fresh installation the administrator's password is printed once by the first
// node that started; the page says where to look.

import { h, field } from '../dom.js';
import * as api from '../api.js';

export async function render(main, ctx) {
  if (ctx.me) return ctx.navigate(next(ctx), { replace: true });
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p.error', { role: 'alert', hidden: true });
  const submit = h('button.primary', { type: 'submit' }, 'Log in');
  const form = h('form.card.login', { 'aria-labelledby': 'login-title' },
    h('h1#login-title', h('img', { src: '/ui/assets/icon.svg', alt: '', width: 28, height: 28 }), 'Baton'),
    field('User name', user),
    field('Password', pass),
    err,
    submit,
    h('details.hint',
      h('summary', 'First start?'),
      h('p', 'On an empty database, the first node to start creates the administrator ', h('code', 'admin'),
        ' and prints its password once on its standard error ("Baton created the administrator … with the password"), unless ',
        h('code', 'BATON_ADMIN_USERNAME'), ' and ', h('code', 'BATON_ADMIN_PASSWORD'),
        ' chose them. Change it under your account after logging in.')),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    err.hidden = true;
    try {
      const r = await api.post('/auth/login', { username: user.value, password: pass.value });
      ctx.loggedIn(r.user);
      ctx.navigate(next(ctx), { replace: true });
    } catch (e2) {
      err.textContent = e2.status === 429 ? e2.message : e2.status === 401 ? 'Wrong user name or password.' : e2.message;
      err.hidden = false;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(h('div.login-wrap', form));
  user.focus();
}

function next(ctx) {
  const n = ctx.query.get('next') || '/ui/';
  // Only this console's own pages: a crafted link must not send the user elsewhere.
  return n.startsWith('/ui') && !n.startsWith('/ui/login') ? n : '/ui/';
}
