// Small helpers to build the DOM without HTML strings: every text a user or a script wrote is
// set as text, never parsed as markup.

/** h('tag.class#id', {attrs}, ...children) → element. `on*` attrs become listeners. */
export function h(spec, attrs, ...children) {
  const [, tag = 'div', rest = ''] = spec.match(/^([a-z0-9-]*)(.*)$/i);
  const el = document.createElement(tag || 'div');
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  // A second argument that is no plain object (text, a number — also 0 —, a node, a list) is
  // the first child.
  if (attrs !== undefined && attrs !== null && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}

/** A labelled form field: label text, then the control, then an optional hint. */
export function field(label, control, hint) {
  const id = control.id || (control.id = 'f-' + Math.random().toString(36).slice(2, 9));
  const hintEl = hint ? h('small.hint', { id: id + '-hint' }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div.field', h('label', { for: id }, label), control, hintEl);
}

/** A status badge for a task, runner or node. */
export function badge(status, text) {
  return h('span.badge', { class: 'st-' + status }, text || status.replace('_', ' '));
}

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: DATE.format(d) }, ago(d));
}

export function fullTime(iso) {
  return iso ? DATE.format(new Date(iso)) : '–';
}

/** "5 s ago", "3 min ago", "yesterday"… relative to now. */
export function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < -5) return 'in ' + span(-s);
  if (s < 5) return 'just now';
  return span(s) + ' ago';
}

/** A duration in seconds in the largest fitting units. */
export function span(s) {
  if (s < 60) return Math.round(s) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min' + (s % 60 >= 1 && s < 600 ? ' ' + Math.floor(s % 60) + ' s' : '');
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}

/** Seconds between two RFC 3339 times (end defaults to now). */
export function between(start, end) {
  if (!start) return null;
  return ((end ? new Date(end) : new Date()) - new Date(start)) / 1000;
}

/** Shows an error (an ApiError or any Error) in a polite alert region. */
export function errorBox(err) {
  return h('p.error', { role: 'alert' }, err && err.message ? err.message : String(err));
}

/** A button that runs `action` and shows its error next to it; disabled while running. */
export function actionButton(label, action, opts = {}) {
  const out = h('span.inline-error', { role: 'alert' });
  const btn = h('button', { type: 'button', class: opts.class, 'aria-label': opts.aria }, label);
  btn.addEventListener('click', async () => {
    if (opts.confirm && !window.confirm(opts.confirm)) return;
    btn.disabled = true;
    out.textContent = '';
    try {
      await action();
    } catch (e) {
      out.textContent = e.message || String(e);
    } finally {
      btn.disabled = false;
    }
  });
  return h('span.action', btn, out);
}

/** A table with a header row; `rows` are arrays of cells. Empty → `empty` text. */
export function table(headers, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p.empty', empty);
  return h('div.table-wrap', h('table',
    h('thead', h('tr', headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', rows.map((r) => (r instanceof Node ? r : h('tr', r.map((c) => h('td', c))))))));
}

/** Copies text to the clipboard; falls back to selecting it. */
export async function copy(text, el) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (el) {
      const r = document.createRange();
      r.selectNodeContents(el);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
    }
    return false;
  }
}
