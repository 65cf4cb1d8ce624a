// Runners: every runner for administrators (live, topic `runners`), the runners of their projects
// for project owners. Pause and resume, revoke; and mint a registration token, shown once with
// the exact command that registers a runner with it.

import { h, field, fill, badge, when, fullTime, errorBox, actionButton, copy } from '../dom.js';
import * as api from '../api.js';

const EXPIRY = [[3600, '1 hour'], [86400, '1 day'], [7 * 86400, '7 days'], [30 * 86400, '30 days'], [365 * 86400, '1 year']];

export async function render(main, ctx) {
  const admin = ctx.me.admin;
  const [list, projects] = await Promise.all([api.all('/runners'), api.all('/projects')]);
  const names = new Map(projects.map((p) => [p.id, p.name]));
  // Administrators mint for any project or none; owners for the projects they own.
  const owned = projects.filter((p) => p.role === 'owner');
  const runners = new Map(list.map((r) => [r.id, r]));

  // Rows are kept per runner and updated in place: events arrive with every heartbeat, and a
  // redrawn row would take the keyboard focus (or a half-done click) away from its buttons.
  const tbody = h('tbody');
  const wrap = h('div.table-wrap.mid', h('table', h('thead', h('tr',
    ['Runner', 'Status', 'Running', 'Labels', 'Project', 'Node', 'Last seen', 'Version', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody));
  const empty = h('p.empty', admin ? 'No runner yet: mint a registration token below and register one.'
    : owned.length ? 'No runner serves your projects yet: mint a registration token below and register one.'
      : 'You see the runners of the projects you own; you own none.');
  const errors = h('div');
  const summary = h('p.summary', { 'aria-live': 'polite' });
  const rows = new Map(); // id → {tr, cells, pause}
  const take = (r) => runners.set(r.id, r);

  const rowOf = (r) => {
    let row = rows.get(r.id);
    if (!row) {
      const pause = actionButton('Pause', async () => {
        take(await api.patch('/runners/' + r.id, { paused: !runners.get(r.id).paused }));
        paint();
      });
      // The API lets administrators revoke any runner and owners the runners of their projects.
      const revoke = admin || r.project_id ? actionButton('Revoke', async () => {
        await api.del('/runners/' + r.id);
        runners.delete(r.id);
        paint();
      }, { class: 'danger', aria: `Revoke ${r.name}`, confirm: `Revoke runner ${r.name}? It is disconnected at once and can never connect again; its running tasks are retried or lost.` }) : null;
      const cells = Array.from({ length: 8 }, () => h('td'));
      row = { tr: h('tr', { dataset: { id: r.id } }, cells, h('td', h('div.actions', pause, revoke))), cells, pause: pause.querySelector('button') };
      rows.set(r.id, row);
    }
    const values = [
      h('span.nowrap', h('strong', r.name), h('span.muted', ` #${r.id}`)),
      h('span.badges', r.online ? badge('online') : badge('offline'), r.paused ? badge('paused') : null),
      h('span.nowrap', { title: 'Tasks running now / scripts it runs at once' }, `${r.running} / ${r.capacity}`),
      r.labels.length ? h('span.labels', r.labels.map((l) => h('code.chip', l))) : h('span.muted', 'none'),
      r.project_id ? h('a', { href: `/ui/projects/${r.project_id}` }, names.get(r.project_id) || `project ${r.project_id}`) : h('span.muted', 'any project'),
      r.node_id ? h('span.mono', r.node_id) : '–',
      when(r.last_seen),
      r.version || '–',
    ];
    values.forEach((v, i) => fill(row.cells[i], v));
    row.pause.textContent = r.paused ? 'Resume' : 'Pause';
    row.pause.setAttribute('aria-label', `${r.paused ? 'Resume' : 'Pause'} ${r.name}`);
    return row.tr;
  };
  const paint = () => {
    const sorted = [...runners.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const id of rows.keys()) if (!runners.has(id)) rows.delete(id);
    const want = sorted.map(rowOf);
    // Moving a row would blur a focused button in it: only when the order really changed.
    if (want.length !== tbody.children.length || want.some((tr, i) => tbody.children[i] !== tr)) tbody.replaceChildren(...want);
    wrap.hidden = sorted.length === 0;
    empty.hidden = sorted.length > 0;
    const online = sorted.filter((r) => r.online).length;
    const running = sorted.reduce((n, r) => n + r.running, 0);
    const capacity = sorted.filter((r) => r.online && !r.paused).reduce((n, r) => n + r.capacity, 0);
    summary.hidden = sorted.length === 0;
    const text = `${online} of ${sorted.length} online · ${running} running of ${capacity} slots`;
    if (summary.textContent !== text) {
      fill(summary, h('strong', String(online)), ` of ${sorted.length} online · `, h('strong', String(running)), ` running of ${capacity} slots`);
    }
  };
  paint();

  main.append(
    h('header.page-head', h('h1', 'Runners'),
      h('p.muted', admin ? 'Every runner of this installation.' : 'The runners that serve the projects you own.')),
    h('section', { 'aria-labelledby': 'runners-title' }, h('div.list-head', h('h2#runners-title', 'Runners'), summary), errors, wrap, empty),
    admin || owned.length ? mintForm(ctx, admin ? projects : owned) : '');

  const reload = () => api.all('/runners').then((l) => {
    runners.clear();
    l.forEach(take);
    paint();
  }, (e) => fill(errors, errorBox(e)));
  const stops = [];
  if (admin) {
    stops.push(ctx.live.subscribe('runners', {
      event: (m) => {
        if (m.type === 'runner.updated' && m.data) {
          take(m.data);
          paint();
        }
      },
      error: (e) => fill(errors, errorBox(e)),
    }));
    let wasLive = true;
    stops.push(ctx.live.watch((s) => {
      if (s === 'live' && !wasLive) reload();
      wasLive = s === 'live';
    }));
    // "Last seen" moves on its own.
    const tick = setInterval(paint, 15000);
    stops.push(() => clearInterval(tick));
  } else {
    // Owners have no live topic for runners: read the list again now and then.
    const tick = setInterval(reload, 15000);
    stops.push(() => clearInterval(tick));
  }
  return () => stops.forEach((f) => f());
}

function mintForm(ctx, projects) {
  const admin = ctx.me.admin;
  const scope = h('select', { name: 'project_id', required: !admin },
    admin ? h('option', { value: '' }, 'Any project') : null,
    projects.map((p) => h('option', { value: p.id }, p.name)));
  const labels = h('input', { name: 'labels', placeholder: 'linux, docker', spellcheck: 'false', autocapitalize: 'none' });
  const expires = h('select', { name: 'expires_in_seconds' }, EXPIRY.map(([s, t]) => h('option', { value: s }, t)));
  const uses = h('input', { name: 'max_uses', type: 'number', min: 0, step: 1, value: 1, inputmode: 'numeric' });
  const out = h('div');
  const result = h('div');
  const submit = h('button.primary', { type: 'submit' }, 'Mint token');
  const form = h('form.card.spaced', { 'aria-labelledby': 'mint-title' },
    h('h2#mint-title', 'Register a runner'),
    h('p.muted', 'A registration token lets a machine register itself as a runner once (or as often as you allow, until it expires).'),
    h('div.row',
      field('Project', scope, admin ? 'A runner for one project runs only its tasks.' : 'The runner will run only this project\'s tasks.'),
      field('Labels', labels, 'Comma-separated. A runner registered with this token gets these labels and no others; leave empty to let it choose.'),
      field('Expires in', expires),
      field('Registrations', uses, '0 = any number until it expires')),
    out, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    result.replaceChildren();
    submit.disabled = true;
    try {
      const body = { expires_in_seconds: Number(expires.value), max_uses: Number(uses.value || 1) };
      const ls = labels.value.split(',').map((l) => l.trim()).filter(Boolean);
      if (ls.length) body.labels = ls;
      const pid = scope.value;
      // Owners mint through their project; administrators through the global route.
      const t = admin
        ? await api.post('/runner-registration-tokens', pid ? { ...body, project_id: Number(pid) } : body)
        : await api.post(`/projects/${pid}/runner-registration-tokens`, body);
      result.append(minted(t, ls, pid ? scope.selectedOptions[0].textContent : null));
      result.querySelector('h2').focus();
    } catch (err) {
      out.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  return h('div', form, result);
}

/** The token, shown once, and the command that registers a runner with it. */
function minted(t, labels, project) {
  // The runner port is not this page's: 7000 by default (grpc.listen), or the load balancer's.
  const scheme = location.protocol === 'https:' ? 'https' : 'http';
  const url = h('input', { name: 'grpc_url', value: `${scheme}://${location.hostname}:7000`, spellcheck: 'false', autocapitalize: 'none', size: 34 });
  const name = h('input', { name: 'runner_name', value: 'runner-1', spellcheck: 'false', autocapitalize: 'none' });
  const cmd = h('pre.command');
  const status = h('span.muted', { role: 'status' });
  const build = () => {
    fill(cmd, ['baton runner register', '--url', sh(url.value.trim()), '--token', sh(t.token), '--name', sh(name.value.trim())].join(' '));
    status.textContent = '';
  };
  url.addEventListener('input', build);
  name.addEventListener('input', build);
  build();
  const copyIt = async () => {
    status.textContent = (await copy(cmd.textContent, cmd)) ? 'Copied.' : 'Selected: press Ctrl+C to copy.';
  };
  const uses = t.max_uses === 0 ? 'any number of runners' : t.max_uses === 1 ? 'one runner' : `${t.max_uses} runners`;
  return h('section.card.once', { 'aria-labelledby': 'minted-title' },
    h('h2#minted-title', { tabindex: -1 }, 'Registration token'),
    h('p', h('strong', 'Shown only this once.'), ` It registers ${uses}`, project ? [' for ', h('strong', project)] : '', ', until ', h('time', { datetime: t.expires_at }, fullTime(t.expires_at)), '.',
      labels.length ? ` Runners get the labels ${labels.join(', ')}.` : ''),
    h('p', h('code.secret', t.token)),
    h('div.row',
      field('Runner address (gRPC)', url, 'The runner port (grpc.listen, 7000 by default), not this page\'s; behind a load balancer, its runner port. Use https when that port has TLS.'),
      field('Runner name', name, 'Unique among runners.')),
    h('p', 'On the runner\'s machine, run:'),
    cmd,
    h('div.actions',
      h('button', { type: 'button', onclick: copyIt }, 'Copy command'),
      status),
    h('p.hint', 'It writes ', h('code', 'runner.toml'), ' in the current directory (', h('code', '--config FILE'), ' writes it elsewhere; ',
      h('code', '--labels'), ' and ', h('code', '--capacity'), ' choose those). Then start the runner there with ', h('code', 'baton runner run'), '.'));
}

/** `s` quoted for a POSIX shell when it needs it. */
function sh(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : "'" + s.replaceAll("'", "'\\''") + "'";
}
