// vov's charts: line and scatter plots drawn as SVG, with a series highlighted
// on hover. Part of vovctl (MIT OR Apache-2.0); no outside code.
'use strict';

(() => {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 760;
  const M = { top: 12, right: 16, bottom: 40, left: 52 };

  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  // A colour per index, spread around the hue circle.
  function colour(i) {
    return `hsl(${(i * 137.508) % 360}, 65%, 45%)`;
  }

  // Round tick steps (1, 2, 5 x 10^k) between lo and hi.
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.round(v / step) * step);
    }
    return out;
  }

  function frame(container, opts) {
    const H = opts.height || 320;
    container.textContent = '';
    const svg = el('svg', {
      viewBox: `0 0 ${W} ${H}`,
      class: 'chart',
      role: 'img',
      'aria-label': opts.title || 'chart',
    }, container);
    const x = (v) => M.left + ((v - opts.xMin) / (opts.xMax - opts.xMin || 1)) * (W - M.left - M.right);
    const y = (v) => H - M.bottom - ((v - opts.yMin) / (opts.yMax - opts.yMin || 1)) * (H - M.top - M.bottom);
    const axes = el('g', { class: 'axes' }, svg);
    for (const t of ticks(opts.yMin, opts.yMax, 5)) {
      el('line', { x1: M.left, x2: W - M.right, y1: y(t), y2: y(t), class: 'grid' }, axes);
      el('text', { x: M.left - 6, y: y(t) + 4, 'text-anchor': 'end' }, axes).textContent = +t.toFixed(6);
    }
    for (const t of ticks(opts.xMin, opts.xMax, 8).filter((t) => !opts.xInteger || Number.isInteger(t))) {
      el('line', { x1: x(t), x2: x(t), y1: H - M.bottom, y2: H - M.bottom + 4 }, axes);
      el('text', { x: x(t), y: H - M.bottom + 16, 'text-anchor': 'middle' }, axes).textContent = +t.toFixed(6);
    }
    el('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }, axes);
    el('line', { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }, axes);
    el('text', { x: (W + M.left) / 2, y: H - 6, 'text-anchor': 'middle', class: 'label' }, axes)
      .textContent = opts.xLabel || '';
    el('text', {
      x: 14, y: (H - M.bottom) / 2, 'text-anchor': 'middle', class: 'label',
      transform: `rotate(-90 14 ${(H - M.bottom) / 2})`,
    }, axes).textContent = opts.yLabel || '';
    const tip = el('text', { x: M.left + 8, y: M.top + 14, class: 'tip' });
    return { svg, x, y, tip };
  }

  // Highlighting: every mark with data-id = id is drawn on top, the rest faded.
  function highlighter(svg, tip, labels) {
    let current = null;
    const set = (id) => {
      if (id === current) return;
      current = id;
      for (const e of svg.querySelectorAll('.hi')) e.classList.remove('hi');
      svg.classList.toggle('hovering', id != null);
      tip.textContent = id == null ? '' : labels.get(id) || id;
      if (id == null) return;
      for (const e of svg.querySelectorAll(`[data-id="${CSS.escape(id)}"]`)) {
        e.classList.add('hi');
        e.parentNode.appendChild(e);
      }
      svg.appendChild(tip);
    };
    svg.addEventListener('mouseover', (ev) => {
      const id = ev.target.getAttribute && ev.target.getAttribute('data-id');
      if (id) set(id);
    });
    svg.addEventListener('mouseleave', () => set(null));
    return set;
  }

  // A chart's frame with `range` unless `opts` says otherwise (y from 0 to 100
  // by default), a group for its marks and the marks' labels by id.
  function plot(container, range, opts) {
    const o = Object.assign({ yMin: 0, yMax: 100 }, range, opts);
    const f = frame(container, o);
    return Object.assign(f, { g: el('g', { class: 'series' }, f.svg), labels: new Map() });
  }

  // Lines: series = [{id, label, points: [[x, y], ...], dashed, colour}].
  // Returns {highlight(id)}.
  function lines(container, opts) {
    // A loop, not Math.max(...xs): a sweep's curves can hold more points than
    // a call takes arguments.
    let xMin = 1;
    let xMax = 2;
    for (const s of opts.series) {
      for (const p of s.points) {
        if (p[0] < xMin) xMin = p[0];
        if (p[0] > xMax) xMax = p[0];
      }
    }
    const { svg, x, y, tip, g, labels } = plot(container, { xMin, xMax }, opts);
    opts.series.forEach((s, i) => {
      labels.set(s.id, s.label);
      if (!s.points.length) return;
      const attrs = {
        points: s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '),
        stroke: s.colour || colour(i),
        'data-id': s.id,
        class: s.dashed ? 'line dashed' : 'line',
      };
      el('polyline', attrs, g);
      if (s.points.length === 1) {
        el('circle', { cx: x(s.points[0][0]), cy: y(s.points[0][1]), r: 3, fill: attrs.stroke, 'data-id': s.id }, g);
      }
      if (s.stop) {
        const p = s.points[s.points.length - 1];
        el('path', {
          d: `M${x(p[0]) - 5},${y(p[1]) - 5}l10,10m0,-10l-10,10`,
          stroke: attrs.stroke, class: 'stop', 'data-id': s.id,
        }, g);
      }
    });
    svg.appendChild(tip);
    return { highlight: highlighter(svg, tip, labels) };
  }

  // Points: [{id, label, x, y}].
  function scatter(container, opts) {
    const xMax = opts.points.reduce((m, p) => Math.max(m, p.x), 1) * 1.15;
    const { svg, x, y, tip, g, labels } = plot(container, { xMin: 0, xMax }, opts);
    opts.points.forEach((p, i) => {
      labels.set(p.id, p.label);
      el('circle', { cx: x(p.x), cy: y(p.y), r: 5, fill: p.colour || colour(i), 'data-id': p.id, class: 'dot' }, g);
    });
    svg.appendChild(tip);
    return { highlight: highlighter(svg, tip, labels) };
  }

  window.VovChart = { lines, scatter, colour };
})();
