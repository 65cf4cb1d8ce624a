// A task's log as a window over all its lines: only the lines in view (and a few around them) are
// in the DOM, so 100,000 lines scroll as smoothly as 100. Lines arrive in batches and are drawn
// once per animation frame. Each line is numbered by its sequence number; a line whose number is
// not above the last one held is a repeat (a replay after a reconnect) and is dropped, which is
// what makes "no gap, no duplicate" visible here.

import { h } from './dom.js';

const LINE = 18; // px; matches .log .ln in style.css
const OVERSCAN = 30;

export class LogView {
  constructor({ onFollow } = {}) {
    this.seq = [];
    this.text = [];
    this.err = [];
    this.lastSeq = 0;
    this.follow = true;
    this.onFollow = onFollow || (() => {});
    this.frame = 0;
    this.rows = h('div.rows');
    this.space = h('div.space', this.rows);
    this.el = h('div.log', { tabindex: 0, role: 'region', 'aria-label': 'Task output' }, this.space);
    this.empty = h('p.log-empty.muted', 'No output yet.');
    this.el.append(this.empty);
    let lastTop = 0;
    this.el.addEventListener('scroll', () => {
      const atBottom = this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - LINE;
      // Scrolling up stops following; coming back to the bottom follows again.
      if (this.el.scrollTop < lastTop && !atBottom && this.follow) this.setFollow(false);
      else if (atBottom && !this.follow) this.setFollow(true);
      lastTop = this.el.scrollTop;
      this.schedule();
    });
  }

  get length() {
    return this.seq.length;
  }

  setFollow(on) {
    this.follow = on;
    this.onFollow(on);
    if (on) this.schedule();
  }

  /** Adds lines `{seq, stream, text}`; repeats and lines out of order are ignored. */
  add(lines) {
    for (const l of lines) {
      if (l.seq <= this.lastSeq) continue;
      this.lastSeq = l.seq;
      this.seq.push(l.seq);
      this.text.push(l.text);
      this.err.push(l.stream === 'stderr');
    }
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paint());
  }

  paint() {
    this.frame = 0;
    const n = this.seq.length;
    this.empty.hidden = n > 0;
    this.space.style.height = n * LINE + 'px';
    if (this.follow) this.el.scrollTop = this.el.scrollHeight;
    const first = Math.max(0, Math.floor(this.el.scrollTop / LINE) - OVERSCAN);
    const last = Math.min(n, Math.ceil((this.el.scrollTop + this.el.clientHeight) / LINE) + OVERSCAN);
    this.rows.style.transform = `translateY(${first * LINE}px)`;
    const out = [];
    for (let i = first; i < last; i++) {
      out.push(h('div.ln', { class: this.err[i] ? 'stderr' : null, dataset: { seq: this.seq[i] } },
        h('span.n', { 'aria-hidden': 'true' }, String(this.seq[i])), h('span.t', this.text[i])));
    }
    this.rows.replaceChildren(...out);
  }
}
