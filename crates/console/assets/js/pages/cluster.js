// The cluster (administrators): the live nodes with their services, version and state, whether
// the database and Redis answer, and drains for rolling restarts. Node changes arrive live
// (topic `cluster`); the whole view is read again every few seconds for what events do not say
// (a node that stopped, the database's and Redis's health).

import { h, fill, badge, when, fullTime, errorBox, actionButton } from '../dom.js';
import * as api from '../api.js';

export async function render(main, ctx) {
  if (!ctx.me.admin) {
    main.append(h('header.page-head', h('h1', 'Cluster')), h('p.notice', 'Only administrators see the cluster.'));
    return;
  }
  let view = await api.get('/cluster');
  const nodes = new Map(view.nodes.map((n) => [n.id, n]));

  const health = h('div.health');
  const served = h('p.notice');
  const errors = h('div');
  // Rows are kept per node and updated in place, so that a repaint never takes the keyboard
  // focus away from a Drain button.
  const tbody = h('tbody');
  const wrap = h('div.table-wrap.mid', h('table', h('thead', h('tr',
    ['Node', 'State', 'Services', 'Version', 'Started', 'Last seen', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody));
  const empty = h('p.empty', 'No live node answered.');
  const rows = new Map(); // id → {tr, cells, drain}

  // Every node's pool counts against the database's limit, and pools open connections as load
  // asks: nodes whose pools together exceed it start fine and fail to connect under load.
  const connectionsOf = (c) => h('p#db-connections.muted',
    `${c.open} of ${c.limit} connections open; the nodes' pools may open ${c.pools}`,
    c.pools > c.limit ? [' ', badge('offline', 'more than the database allows')] : null);
  // A draining node is not ready by design: "draining" says it all.
  const state = (n) => (n.draining ? badge('draining') : n.ready ? badge('ready') : badge('offline', 'not ready'));
  const rowOf = (n, here) => {
    let row = rows.get(n.id);
    if (!row) {
      const drain = actionButton('Drain', async () => {
        const draining = !nodes.get(n.id).draining;
        if (draining && !window.confirm(`Drain node ${n.id}? Its /api/ready answers 503, it takes no new work or runner streams, and its runners move to other nodes with their running tasks. Undrain it (or restart it) to bring it back.`)) return;
        const got = await api.post(`/cluster/nodes/${encodeURIComponent(n.id)}/drain`, { draining });
        nodes.set(got.id, got);
        paint();
      });
      const cells = Array.from({ length: 6 }, () => h('td'));
      row = { tr: h('tr', cells, h('td', drain)), cells, drain: drain.querySelector('button') };
      rows.set(n.id, row);
    }
    const values = [
      [h('strong.mono', n.id), n.id === here ? h('span.muted', ' (this page)') : null],
      state(n),
      (n.services || []).join(', ') || '–',
      n.version || '–',
      h('span', { title: fullTime(n.started_at) }, when(n.started_at)),
      when(n.last_seen),
    ];
    values.forEach((v, i) => fill(row.cells[i], v));
    row.tr.classList.toggle('here', n.id === here);
    row.drain.textContent = n.draining ? 'Undrain' : 'Drain';
    row.drain.className = n.draining ? '' : 'danger';
    row.drain.setAttribute('aria-label', `${n.draining ? 'Undrain' : 'Drain'} node ${n.id}`);
    return row.tr;
  };
  const paint = () => {
    const here = api.lastNode;
    fill(served, 'This page was served by node ', h('strong.mono', here || '?'), '. Behind a load balancer, other requests may reach other nodes.');
    fill(health,
      h('div.card', h('h2', 'Database'), h('p', view.database.ok ? badge('ready', 'answers') : badge('offline', 'unreachable'), ' ', h('span.muted', view.database.dialect)),
        view.database.connections ? connectionsOf(view.database.connections) : null),
      h('div.card', h('h2', 'Redis'), h('p', view.redis
        ? (view.redis.ok ? badge('ready', 'answers') : badge('offline', 'unreachable'))
        : h('span.muted', 'not configured (in-process coordination)'))),
      h('div.card', h('h2', 'Nodes'), h('p', h('strong', String([...nodes.values()].filter((n) => n.ready).length)), ` of ${nodes.size} ready`)));
    const sorted = [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id));
    for (const id of rows.keys()) if (!nodes.has(id)) rows.delete(id);
    const want = sorted.map((n) => rowOf(n, here));
    if (want.length !== tbody.children.length || want.some((tr, i) => tbody.children[i] !== tr)) tbody.replaceChildren(...want);
    wrap.hidden = sorted.length === 0;
    empty.hidden = sorted.length > 0;
  };
  paint();

  main.append(
    h('header.page-head', h('h1', 'Cluster'), h('p.muted', 'The live nodes of this installation and what they depend on.')),
    served, health,
    h('section', { 'aria-labelledby': 'nodes-title' }, h('div.list-head', h('h2#nodes-title', 'Nodes')), errors, wrap, empty),
    h('p.hint', 'Drain a node before restarting it; a restarted node starts undrained.'));

  const reload = async () => {
    try {
      view = await api.get('/cluster');
      nodes.clear();
      view.nodes.forEach((n) => nodes.set(n.id, n));
      errors.replaceChildren();
      paint();
    } catch (e) {
      fill(errors, errorBox(e));
    }
  };
  const stop = ctx.live.subscribe('cluster', {
    event: (m) => {
      if (m.type === 'node.updated' && m.data) {
        nodes.set(m.data.id, m.data);
        paint();
      }
    },
    error: (e) => fill(errors, errorBox(e)),
  });
  const tick = setInterval(reload, 10000);
  return () => {
    stop();
    clearInterval(tick);
  };
}
