// vov's dashboard: draws the page for the address (/, /sweeps/NAME,
// /trials/ID, /compare?sweeps=A,B) from vovctl's JSON API and keeps it live
// with server-sent events. Part of vovctl (MIT OR Apache-2.0).
'use strict';

(() => {
  const main = document.getElementById('main');
  // Figures a test (or a curious person) can read: ms since navigation start.
  const vov = (window.vov = { timings: {}, info: null });

  // ---- small helpers -------------------------------------------------------

  const esc = (v) => String(v == null ? '' : v).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
  const enc = encodeURIComponent;

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids.flat()) if (k != null) e.append(k);
    return e;
  }

  const num = (v, p) => (v == null ? '' : Number(v).toFixed(p));
  function duration(s) {
    if (s == null) return '';
    s = Math.round(s);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
  }
  const when = (ms) => (ms == null ? '' : new Date(ms).toLocaleString());

  function badge(state, text) {
    return `<span class="badge s-${esc(state)}">${esc(text || state)}</span>`;
  }
  // A state's badge, naming the failure class when there is one.
  function stateBadge(state, failure) {
    return badge(state, failure ? `${state} (${failure})` : state.replace('_', ' '));
  }
  function states(counts) {
    return Object.entries(counts).map(([s, n]) => badge(s, `${n} ${s.replace('_', ' ')}`)).join(' ');
  }
  function progress(done, total) {
    const p = total ? Math.round((100 * done) / total) : 0;
    return `<progress max="${total}" value="${done}" title="${done} of ${total} epochs"></progress> ${p}%`;
  }

  function setLive(text, ok) {
    const el = document.getElementById('live');
    el.textContent = text;
    el.className = ok ? 'live ok' : 'live';
  }

  function crumbs(...parts) {
    const nav = document.getElementById('crumbs');
    nav.textContent = '';
    for (const [text, href] of parts) {
      nav.append(' / ', href ? h('a', { href, text }) : h('span', { text }));
    }
    document.title = ['vov', ...parts.map((p) => p[0])].join(' · ');
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: 'same-origin' });
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  // Follows /api/live?QUERY: handlers by event name.
  function follow(query, handlers) {
    const es = new EventSource(`/api/live?${query}`);
    for (const [name, f] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => f(JSON.parse(e.data)));
    }
    es.addEventListener('problem', (e) => problem(e.data));
    es.addEventListener('closed', (e) => { es.close(); setLive('ended', false); problem(e.data); });
    es.onopen = () => setLive('live', true);
    es.onerror = () => setLive(es.readyState === 2 ? 'disconnected' : 'reconnecting…', false);
    return es;
  }

  function problem(text) {
    const p = document.getElementById('problem') || main.insertBefore(h('p', { id: 'problem', class: 'problem' }), main.firstChild);
    p.textContent = text;
  }

  async function cancel(target, what) {
    if (!window.confirm(`Cancel ${what}?`)) return;
    try {
      const r = await fetch(`/api/cancel/${enc(target)}`, {
        method: 'POST', credentials: 'same-origin', headers: { 'x-vov-action': 'cancel' },
      });
      const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
      if (!r.ok) throw new Error(body.error);
      problem(`cancelled ${body.cancelled} trial(s)` + (body.failures ? `; ${body.failures} could not be reached` : ''));
    } catch (e) {
      problem(`cancel failed: ${e.message}`);
    }
  }

  // ---- shared pieces -------------------------------------------------------

  function publishedTable(report) {
    if (!report.sections.length) return '<p class="muted">No results yet.</p>';
    return report.sections.map((s) => `
      <h3>${esc(s.device)} — ${esc(s.cpu)} <span class="muted">(fingerprint ${esc(s.fingerprint)}, vovd ${esc(s.version)})</span></h3>
      <div class="scroll"><table class="published"><thead><tr>${report.header.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead>
      <tbody>${s.rows.map((r) => `<tr>${r.map((c, i) => `<td${i ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`).join('');
  }

  // Curves of a sweep's trials (validation solid; training dashed when asked).
  function curveSeries(trials, curves, withTrain) {
    const series = [];
    trials.forEach((t, i) => {
      const pts = curves.get(t.trial) || [];
      const colour = window.VovChart.colour(i);
      const label = `${t.label} #${t.repeat} (${t.trial})`;
      series.push({ id: t.trial, label, colour, points: pts.map((p) => [p[0], p[2]]), stop: t.state === 'stopped_early' });
      if (withTrain) series.push({ id: t.trial, label, colour, dashed: true, points: pts.map((p) => [p[0], p[1]]) });
    });
    return series;
  }

  function mergeEpochs(curves, delta) {
    if (delta.full) curves.clear();
    for (const [id, pts] of Object.entries(delta.trials)) {
      const have = curves.get(id) || [];
      for (const p of pts) {
        const at = have.findIndex((q) => q[0] === p[0]);
        if (at >= 0) have[at] = p;
        else have.push(p);
      }
      have.sort((a, b) => a[0] - b[0]);
      curves.set(id, have);
    }
  }

  // Calls f at most once per animation frame, however often it is asked.
  function throttled(f) {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; f(); });
    };
  }

  // ---- /: the sweeps ------------------------------------------------------

  function pageSweeps() {
    crumbs(['sweeps']);
    main.innerHTML = `<h1>Sweeps</h1>
      <div class="scroll"><table id="sweeps"><thead><tr><th></th><th>sweep</th><th>file</th><th>trials</th><th>by state</th>
      <th>progress</th><th>started</th><th>ended</th><th>best MaxValAcc %</th></tr></thead><tbody></tbody></table></div>
      <p><button id="compare" disabled>Compare selected</button> <span class="muted">tick two or more sweeps</span></p>`;
    const body = main.querySelector('tbody');
    const button = main.querySelector('#compare');
    const picked = new Set();
    button.onclick = () => { location.href = `/compare?sweeps=${[...picked].map(enc).join(',')}`; };
    body.addEventListener('change', (e) => {
      const name = e.target.dataset.sweep;
      if (e.target.checked) picked.add(name); else picked.delete(name);
      button.disabled = picked.size < 2;
    });
    follow('', {
      sweeps: (list) => {
        body.innerHTML = list.length ? list.map((s) => `<tr data-sweep="${esc(s.name)}">
          <td><input type="checkbox" data-sweep="${esc(s.name)}" aria-label="compare ${esc(s.name)}"${picked.has(s.name) ? ' checked' : ''}></td>
          <td><a href="/sweeps/${enc(s.name)}">${esc(s.name)}</a></td><td class="muted">${esc(s.file)}</td>
          <td class="n">${s.trials}</td><td>${states(s.states)}</td><td>${progress(s.epochs_done, s.epochs_total)}</td>
          <td>${when(s.started_ms)}</td><td>${when(s.ended_ms)}</td>
          <td>${s.best ? `${num(s.best.max_val_acc, 2)} <span class="muted">${esc(s.best.label)}</span>` : ''}</td></tr>`).join('')
          : '<tr><td colspan="9" class="muted">No sweeps in this store yet: run <code>vovctl sweep FILE</code>.</td></tr>';
        vov.timings.sweeps_ms = vov.timings.sweeps_ms || performance.now();
      },
    });
  }

  // ---- /sweeps/NAME ------------------------------------------------------

  const COLUMNS = [
    ['trial', 'trial', 's'], ['label', 'config', 's'], ['repeat', '#', 'n'], ['state', 'state', 's'],
    ['host', 'host', 's'], ['attempt', 'attempt', 'n'], ['epoch', 'epoch', 'n'],
    ['train_acc', 'train acc %', 'n'], ['val_acc', 'val acc %', 'n'], ['max_val_acc', 'best val %', 'n'],
    ['s_per_epoch', 's/epoch', 'n'], ['eta_s', 'ETA', 'n'],
  ];

  function cell(t, key) {
    switch (key) {
      case 'trial': return `<i class="swatch" data-c="${t.index}"></i><a href="/trials/${enc(t.trial)}">${esc(t.trial)}</a>`;
      case 'state': return stateBadge(t.state, t.failure);
      case 'epoch': return `${t.epoch}/${t.epochs}`;
      case 'train_acc': case 'val_acc': case 'max_val_acc': return num(t[key], 2);
      case 's_per_epoch': return num(t[key], 2);
      case 'eta_s': return duration(t.eta_s);
      default: return esc(t[key]);
    }
  }

  function trialTable(root, opts) {
    const view = { sort: null, desc: false, text: '', state: '' };
    root.innerHTML = `<div class="tools"><input type="search" placeholder="filter: config, trial, host" aria-label="filter trials">
      <select aria-label="state"><option value="">every state</option>${vov.info.states.map((s) => `<option>${esc(s)}</option>`).join('')}</select>
      <span class="count muted"></span></div>
      <div class="scroll"><table class="trials"><thead><tr>${COLUMNS.map(([k, t, kind]) => `<th data-key="${k}" class="${kind === 'n' ? 'n' : ''}" tabindex="0">${esc(t)}</th>`).join('')}${opts.cancel ? '<th></th>' : ''}</tr></thead><tbody></tbody></table></div>`;
    const body = root.querySelector('tbody');
    const count = root.querySelector('.count');
    let trials = [];
    const render = () => {
      const text = view.text.toLowerCase();
      let rows = trials.filter((t) => (!view.state || t.state === view.state) &&
        (!text || `${t.label} ${t.trial} ${t.host || ''}`.toLowerCase().includes(text)));
      if (view.sort) {
        const k = view.sort;
        const key = (t) => (k === 'epoch' ? t.epoch / (t.epochs || 1) : t[k]);
        rows = rows.slice().sort((a, b) => {
          const x = key(a), y = key(b);
          if (x == null && y == null) return 0;
          if (x == null) return 1;
          if (y == null) return -1;
          const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
          return view.desc ? -c : c;
        });
      }
      body.innerHTML = rows.map((t) => `<tr data-trial="${esc(t.trial)}" data-state="${esc(t.state)}">${COLUMNS.map(([k, , kind]) => `<td data-col="${k}"${kind === 'n' ? ' class="n"' : ''}>${cell(t, k)}</td>`).join('')}${opts.cancel ? `<td>${t.cancellable ? `<button class="cancel" data-cancel="${esc(t.trial)}">cancel</button>` : ''}</td>` : ''}</tr>`).join('');
      // Colours through the CSSOM: the page's policy refuses style attributes.
      for (const i of body.querySelectorAll('i.swatch')) i.style.background = window.VovChart.colour(+i.dataset.c);
      count.textContent = `${rows.length} of ${trials.length} trials`;
      for (const th of root.querySelectorAll('th[data-key]')) {
        th.setAttribute('aria-sort', th.dataset.key === view.sort ? (view.desc ? 'descending' : 'ascending') : 'none');
      }
    };
    const sortBy = (key) => {
      const t0 = performance.now();
      if (view.sort === key) view.desc = !view.desc; else { view.sort = key; view.desc = false; }
      render();
      vov.timings.sort_ms = performance.now() - t0;
      requestAnimationFrame(() => { vov.timings.sort_paint_ms = performance.now() - t0; });
    };
    root.querySelector('thead').addEventListener('click', (e) => { const th = e.target.closest('th[data-key]'); if (th) sortBy(th.dataset.key); });
    root.querySelector('thead').addEventListener('keydown', (e) => { const th = e.target.closest('th[data-key]'); if (th && e.key === 'Enter') sortBy(th.dataset.key); });
    root.querySelector('input').addEventListener('input', (e) => { view.text = e.target.value; render(); });
    root.querySelector('select').addEventListener('change', (e) => { view.state = e.target.value; render(); });
    body.addEventListener('mouseover', (e) => { const tr = e.target.closest('tr'); if (tr && opts.hover) opts.hover(tr.dataset.trial); });
    body.addEventListener('mouseleave', () => opts.hover && opts.hover(null));
    body.addEventListener('click', (e) => { const b = e.target.closest('button[data-cancel]'); if (b) cancel(b.dataset.cancel, `trial ${b.dataset.cancel}`); });
    // Each trial keeps its sweep-order colour, as in the curves, however sorted.
    let last = '';
    return {
      update(list) {
        // An unchanged table is not redrawn (a redraw drops a click in flight).
        const text = JSON.stringify(list);
        if (text === last) return;
        last = text;
        trials = list.map((t, index) => Object.assign({ index }, t));
        render();
      },
    };
  }

  function searchSummary(s) {
    if (!s) return '';
    const best = s.best ? ` Best: ${esc(s.best[0])}, ${esc(s.metric)} ${num(s.best[1] * (s.metric === 'val_acc' ? 100 : 1), 3)} at epoch ${s.best[2]}.` : '';
    return `<p>Search <b>${esc(s.kind)}</b> on ${esc(s.metric)}: ${s.epochs_run} epochs run of the ${s.grid_epochs} a grid would run.${best}</p>`;
  }

  function sweepPanel(root, name, opts) {
    const dl = vov.info.downloads.map((f) => `<a href="/sweeps/${enc(name)}/download/${enc(f)}" download>${esc(f)}</a>`).join(' ');
    root.innerHTML = `<div class="summary"></div>
      ${opts.compact ? '' : `<p class="downloads">Download: ${dl}${vov.info.allow_cancel ? ' <button class="cancel-sweep">cancel the sweep</button>' : ''}</p>`}
      ${opts.compact ? '' : '<section><h2>Trials</h2><div class="table"></div></section>'}
      <section><h2>Learning curves</h2><label class="muted"><input type="checkbox" class="train"> training accuracy (dashed)</label><div class="curves chart-box"></div></section>
      ${opts.compact ? '' : '<section><h2>Accuracy vs batch-1 latency</h2><div class="scatter chart-box"></div></section>'}
      <section><h2>Published table</h2><div class="published"></div><div class="search"></div></section>
      ${opts.compact ? '' : '<section><h2>Failures</h2><div class="failures"></div></section>'}`;
    const curves = new Map();
    let data = null;
    let chart = null;
    let scatter = null;
    const withTrain = root.querySelector('input.train');
    const table = opts.compact ? null : trialTable(root.querySelector('.table'), {
      cancel: vov.info.allow_cancel,
      hover: (id) => { if (chart) chart.highlight(id); if (scatter) scatter.highlight(id); },
    });
    const sweepButton = root.querySelector('.cancel-sweep');
    if (sweepButton) sweepButton.onclick = () => cancel(name, `every unfinished trial of ${name}`);
    const drawCurves = throttled(() => {
      if (!data) return;
      chart = window.VovChart.lines(root.querySelector('.curves'), {
        title: `accuracy per epoch of ${name}`,
        series: curveSeries(data.trials, curves, withTrain.checked),
        xLabel: 'epoch', xInteger: true, yLabel: 'accuracy %',
      });
      vov.timings.curves_ms = vov.timings.curves_ms || performance.now();
    });
    withTrain.onchange = drawCurves;
    const render = (d) => {
      data = d;
      const s = d.summary;
      root.querySelector('.summary').innerHTML = `<p>${s.file ? `<code>${esc(s.file)}</code> · ` : ''}${s.trials} trials ${states(s.states)} · ${progress(s.epochs_done, s.epochs_total)}
        ${s.started_ms ? ` · started ${when(s.started_ms)}` : ''}${s.ended_ms ? ` · ended ${when(s.ended_ms)}` : ''}
        ${s.best ? ` · best MaxValAcc <b>${num(s.best.max_val_acc, 2)}%</b> (${esc(s.best.label)})` : ''}</p>`;
      if (table) table.update(d.trials);
      root.querySelector('.published').innerHTML = publishedTable(d.report);
      root.querySelector('.search').innerHTML = searchSummary(d.search);
      if (!opts.compact) {
        root.querySelector('.failures').innerHTML = d.failures.length
          ? `<div class="scroll"><table><thead><tr><th>trial</th><th>config</th><th>class</th><th>message</th></tr></thead><tbody>${d.failures.map((f) => `<tr><td><a href="/trials/${enc(f.trial)}">${esc(f.trial)}</a></td><td>${esc(f.label)}</td><td>${badge('failed', f.failure)}</td><td class="msg">${esc(f.message)}</td></tr>`).join('')}</tbody></table></div>`
          : '<p class="muted">None.</p>';
        const box = root.querySelector('.scatter');
        if (d.points.length) {
          const index = new Map(d.trials.map((t, i) => [t.trial, i]));
          scatter = window.VovChart.scatter(box, {
            title: `max validation accuracy against batch-1 latency of ${name}`,
            points: d.points.map((p) => ({ id: p.trial, label: `${p.label} (${p.trial})`, x: p.p50_ms, y: p.max_val_acc, colour: window.VovChart.colour(index.get(p.trial)) })),
            xLabel: 'batch-1 latency, p50 ms', yLabel: 'max validation accuracy %',
          });
        } else {
          box.innerHTML = '<p class="muted">No batch-1 timings yet.</p>';
        }
      }
      if (!vov.timings.table_ms) vov.timings.table_ms = performance.now();
      drawCurves();
    };
    return { render, epochs: (delta) => { mergeEpochs(curves, delta); drawCurves(); } };
  }

  function pageSweep(name) {
    crumbs(['sweeps', '/'], [name]);
    main.innerHTML = `<h1>${esc(name)}</h1><div id="sweep"></div>`;
    const panel = sweepPanel(main.querySelector('#sweep'), name, {});
    follow(`sweep=${enc(name)}`, { sweep: panel.render, epochs: panel.epochs });
  }

  // ---- /trials/ID ----------------------------------------------------------

  function kv(obj) {
    return `<table class="kv"><tbody>${Object.entries(obj).filter(([, v]) => v != null && v !== '' && !(Array.isArray(v) && !v.length)).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(Array.isArray(v) ? v.join(', ') : v)}</td></tr>`).join('')}</tbody></table>`;
  }

  function pageTrial(id) {
    crumbs(['sweeps', '/'], [id]);
    main.innerHTML = `<h1>Trial <code>${esc(id)}</code></h1><div id="trial"><p class="muted">Loading…</p></div>`;
    const root = main.querySelector('#trial');
    let laidOut = false;
    const layout = () => {
      root.innerHTML = `<div class="head"></div>
        <div class="cols"><section><h2>Placement</h2><div class="place"></div></section>
        <section><h2>Hardware fingerprint</h2><div class="fp"></div></section>
        <section><h2>Timings</h2><div class="timings"></div></section></div>
        <section><h2>Accuracy</h2><p class="muted">validation solid, training dashed</p><div id="curve" class="chart-box"></div></section>
        <section><h2>Loss</h2><p class="muted">validation solid, training dashed</p><div id="loss" class="chart-box"></div></section>
        <section><h2>Epochs</h2><div class="epochs scroll"></div></section>
        <section><h2>Events</h2><div class="events scroll"></div></section>
        <section><h2>Spec</h2><pre class="spec"></pre></section>`;
      laidOut = true;
    };
    follow(`trial=${enc(id)}`, {
      trial: (t) => {
        if (!laidOut) layout();
        const l = t.line;
        if (t.sweep) crumbs(['sweeps', '/'], [t.sweep, `/sweeps/${enc(t.sweep)}`], [id]);
        root.querySelector('.head').innerHTML = `<p><b>${esc(l.label)}</b> #${l.repeat} · ${stateBadge(l.state, l.failure)}
          · epoch ${l.epoch}/${l.epochs}${l.eta_s != null ? ` · ETA ${duration(l.eta_s)}` : ''}
          ${vov.info.allow_cancel && l.cancellable ? ' <button class="cancel">cancel</button>' : ''}</p>
          ${l.message ? `<p class="msg">${esc(l.message)}</p>` : ''}${t.warnings.length ? `<p class="muted">warnings: ${esc(t.warnings.join('; '))}</p>` : ''}`;
        const b = root.querySelector('.head button.cancel');
        if (b) b.onclick = () => cancel(id, `trial ${id}`);
        root.querySelector('.place').innerHTML = kv({ sweep: t.sweep, model: t.model, host: l.host, attempt: l.attempt, 'host fingerprint': t.host_fingerprint });
        root.querySelector('.fp').innerHTML = t.fingerprint ? kv(t.fingerprint) : '<p class="muted">Known once it has a result.</p>';
        root.querySelector('.timings').innerHTML = t.timings ? kv(t.timings) : '<p class="muted">None yet.</p>';
        const hist = t.history;
        window.VovChart.lines(root.querySelector('#curve'), {
          title: 'accuracy per epoch',
          series: [
            { id: 'val', label: 'validation accuracy', colour: window.VovChart.colour(0), points: hist.map((m) => [m.epoch, m.val_acc]) },
            { id: 'train', label: 'training accuracy', colour: window.VovChart.colour(1), dashed: true, points: hist.map((m) => [m.epoch, m.train_acc]) },
          ],
          xLabel: 'epoch', xInteger: true, yLabel: 'accuracy %',
        });
        const losses = hist.flatMap((m) => [m.val_loss, m.train_loss]).filter(Number.isFinite);
        window.VovChart.lines(root.querySelector('#loss'), {
          title: 'loss per epoch',
          series: [
            { id: 'val', label: 'validation loss', colour: window.VovChart.colour(0), points: hist.map((m) => [m.epoch, m.val_loss]) },
            { id: 'train', label: 'training loss', colour: window.VovChart.colour(1), dashed: true, points: hist.map((m) => [m.epoch, m.train_loss]) },
          ],
          yMax: Math.max(0.1, ...losses) * 1.1,
          xLabel: 'epoch', xInteger: true, yLabel: 'loss',
        });
        root.querySelector('.epochs').innerHTML = hist.length ? `<table><thead><tr><th>epoch</th><th class="n">train loss</th><th class="n">train acc %</th><th class="n">val loss</th><th class="n">val acc %</th><th class="n">s</th><th class="n">data wait s</th></tr></thead><tbody>${hist.map((m) => `<tr><td>${m.epoch}</td><td class="n">${num(m.train_loss, 4)}</td><td class="n">${num(m.train_acc, 2)}</td><td class="n">${num(m.val_loss, 4)}</td><td class="n">${num(m.val_acc, 2)}</td><td class="n">${num(m.epoch_s, 2)}</td><td class="n">${num(m.data_wait_s, 3)}</td></tr>`).join('')}</tbody></table>` : '<p class="muted">No epoch finished yet.</p>';
        root.querySelector('.events').innerHTML = `<table><thead><tr><th>when</th><th>state</th><th>host</th><th>attempt</th><th>message</th></tr></thead><tbody>${t.events.map((e) => `<tr><td>${when(e.at_ms)}</td><td>${stateBadge(e.state, e.failure)}</td><td>${esc(e.host)}</td><td class="n">${e.attempt}</td><td class="msg">${esc(e.message)}</td></tr>`).join('')}</tbody></table>`;
        root.querySelector('.spec').textContent = JSON.stringify(t.config, null, 2);
        vov.timings.trial_ms = vov.timings.trial_ms || performance.now();
      },
    });
  }

  // ---- /compare?sweeps=A,B ---------------------------------------------------

  function pageCompare(names) {
    crumbs(['sweeps', '/'], ['compare']);
    if (names.length < 2) {
      main.innerHTML = '<h1>Compare</h1><p class="problem">Name two or more sweeps: <code>/compare?sweeps=A,B</code>, or tick them on the <a href="/">sweeps page</a>.</p>';
      return;
    }
    main.innerHTML = `<h1>Compare</h1><div class="compare">${names.map((n, i) => `<div class="column" data-sweep="${esc(n)}"><h2><a href="/sweeps/${enc(n)}">${esc(n)}</a></h2><div id="c${i}"></div></div>`).join('')}</div>`;
    // One stream for every column: a browser opens few connections to one server.
    const panels = new Map(names.map((n, i) => [n, sweepPanel(main.querySelector(`#c${i}`), n, { compact: true })]));
    follow(`sweep=${names.map(enc).join(',')}`, {
      sweep: (d) => { const p = panels.get(d.summary.name); if (p) p.render(d); },
      epochs: (d) => { const p = panels.get(d.sweep); if (p) p.epochs(d); },
    });
  }

  // ---- routing --------------------------------------------------------------

  async function start() {
    try {
      vov.info = await getJSON('/api/info');
    } catch (e) {
      problem(`cannot reach vovctl: ${e.message}`);
      return;
    }
    document.getElementById('footer').textContent = `vovctl ${vov.info.version} · ${vov.info.store}${vov.info.allow_cancel ? ' · cancel allowed' : ' · read-only'}`;
    const path = location.pathname;
    if (path.startsWith('/sweeps/')) pageSweep(decodeURIComponent(path.slice('/sweeps/'.length)));
    else if (path.startsWith('/trials/')) pageTrial(decodeURIComponent(path.slice('/trials/'.length)));
    else if (path === '/compare') pageCompare((new URLSearchParams(location.search).get('sweeps') || '').split(',').filter(Boolean));
    else pageSweeps();
  }

  start();
})();
