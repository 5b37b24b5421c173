(() => {
  'use strict';
  // Report strings reach the page only through textContent here: never innerHTML.
  const source = document.getElementById('tmgt-data');
  const data = source ? JSON.parse(source.textContent || '{}') : {};
  const tensors = data.tensors || {};
  const COLUMNS = [
    ['name', 'Tensor', 'text'],
    ['role', 'Role', 'text'],
    ['shape', 'Shape', 'shape'],
    ['dtype', 'DType', 'text'],
    ['bytes', 'Bytes', 'num'],
    ['sqnrDb', 'SQNR dB', 'num'],
    ['sqnrBoundDb', 'Bound dB', 'num'],
    ['zeroFraction', 'Zeros', 'num'],
    ['codes', 'Verdicts', 'codes'],
  ];
  const fmt = (key, v) => {
    if (v === undefined || v === null) return '';
    if (key === 'shape') return '[' + v.join(', ') + ']';
    if (key === 'codes') return v.join(' ');
    if (key === 'bytes') return v.toLocaleString('en-US');
    if (key === 'zeroFraction') return (100 * v).toFixed(v > 0 && v < 0.001 ? 3 : 1) + '%';
    if (typeof v === 'number') return Number.isFinite(v) ? v.toFixed(1) : String(v);
    return String(v);
  };
  const sortValue = (kind, v) => {
    if (v === undefined || v === null) return kind === 'text' ? '' : -Infinity;
    if (kind === 'shape') return v.reduce((a, b) => a * b, 1);
    if (kind === 'codes') return v.length;
    return v;
  };
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function build(host) {
    if (host.dataset.ready) return;
    const rows = tensors[host.dataset.cell];
    if (!rows) return;
    host.dataset.ready = '1';
    const bar = el('div', 'tbar');
    const filter = el('input', 'filter');
    filter.type = 'search';
    filter.placeholder = 'Filter tensors: name, role, dtype or code…';
    filter.setAttribute('aria-label', 'Filter tensors');
    const onlyBad = el('label', 'only-bad');
    const box = el('input');
    box.type = 'checkbox';
    onlyBad.append(box, document.createTextNode(' failing only'));
    const count = el('span', 'count');
    bar.append(filter, onlyBad, count);
    const table = el('table', 'tensors');
    const head = el('tr');
    const state = { key: 'codes', dir: -1 };
    const ths = COLUMNS.map(([key, label, kind]) => {
      const th = el('th', kind === 'text' || kind === 'codes' ? '' : 'num');
      const b = el('button', 'sort', label);
      b.type = 'button';
      b.addEventListener('click', () => {
        state.dir = state.key === key ? -state.dir : kind === 'text' ? 1 : -1;
        state.key = key;
        draw();
      });
      th.append(b);
      head.append(th);
      return [key, th];
    });
    const thead = el('thead');
    thead.append(head);
    const tbody = el('tbody');
    table.append(thead, tbody);
    const wrap = el('div', 'scroll');
    wrap.append(table);
    host.append(bar, wrap);
    const order = rows.map((_, i) => i);

    function draw() {
      const q = filter.value.trim().toLowerCase();
      const kind = (COLUMNS.find((c) => c[0] === state.key) || [])[2];
      const shown = order
        .filter((i) => {
          const r = rows[i];
          if (box.checked && r.codes.length === 0) return false;
          if (!q) return true;
          return [r.name, r.role || '', r.dtype, r.codes.join(' ')].join(' ').toLowerCase().includes(q);
        })
        .sort((a, b) => {
          const x = sortValue(kind, rows[a][state.key]);
          const y = sortValue(kind, rows[b][state.key]);
          const c = x < y ? -1 : x > y ? 1 : 0;
          return c * state.dir || a - b;
        });
      for (const [key, th] of ths) th.setAttribute('aria-sort', key === state.key ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
      tbody.replaceChildren(
        ...shown.map((i) => {
          const r = rows[i];
          const tr = el('tr', r.codes.length ? 'bad' : '');
          for (const [key, , kind] of COLUMNS) {
            const td = el('td', kind === 'text' || kind === 'codes' ? key : 'num ' + key, fmt(key, r[key]));
            if (key === 'sqnrDb' && typeof r.sqnrDb === 'number' && typeof r.sqnrBoundDb === 'number' && r.sqnrDb < r.sqnrBoundDb)
              td.classList.add('below');
            tr.append(td);
          }
          return tr;
        }),
      );
      count.textContent = shown.length + ' of ' + rows.length + ' tensors';
    }
    filter.addEventListener('input', draw);
    box.addEventListener('change', draw);
    draw();
  }

  for (const d of document.querySelectorAll('details.cell')) {
    d.addEventListener('toggle', () => {
      if (d.open) for (const host of d.querySelectorAll('.tensor-host')) build(host);
    });
  }
  function openFromHash() {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id ? document.getElementById(id) : null;
    if (target && target.tagName === 'DETAILS') {
      target.open = true;
      for (const host of target.querySelectorAll('.tensor-host')) build(host);
      target.scrollIntoView({ block: 'start' });
    }
  }
  window.addEventListener('hashchange', openFromHash);
  openFromHash();
})();
