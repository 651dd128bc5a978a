// Michi dashboard: plain DOM, no dependencies. Talks to /admin/* with the admin key kept in
// sessionStorage. Everything from the server is inserted as text, never as HTML.
const $ = (sel) => document.querySelector(sel);
const STORE = 'michi.adminKey';
const REFRESH_MS = 5000;
let adminKey = sessionStorage.getItem(STORE) || '';
let tab = 'keys';
let keysTimer = null;
let keysCache = [];

// h('td', {class: 'x', dataset: {testid: 'y'}}, 'text', childNode, ...)
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
const show = (el, on = true) => { el.hidden = !on; };
function setError(el, msg) { el.textContent = msg || ''; show(el, !!msg); }

class ApiError extends Error {
  constructor(status, message, param) { super(message); this.status = status; this.param = param; }
}

async function api(method, path, body) {
  let res;
  try {
    res = await fetch(`..${path}`, { // relative to /dashboard/: works behind a path prefix too
      method,
      headers: { Authorization: `Bearer ${adminKey}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, `Cannot reach the gateway (${e.message}).`);
  }
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const err = data?.error;
    throw new ApiError(res.status, err?.message || `HTTP ${res.status} ${res.statusText}`, err?.param);
  }
  return data;
}

// A 401/403 after sign-in means the key changed under us: back to the login view.
function handleAuth(e) {
  if (e.status === 401 || e.status === 403) { logout(`Signed out: ${e.message}`); return true; }
  return false;
}

// ---- formatting ----
const nf = new Intl.NumberFormat('en-US');
const fmtInt = (n) => nf.format(Math.round(n || 0));
function fmtUSD(v) {
  v = Number(v) || 0;
  if (v === 0) return '$0';
  const a = Math.abs(v);
  if (a >= 100) return '$' + nf.format(Math.round(v));
  if (a >= 1) return '$' + v.toFixed(2);
  const t = String(Number(v.toPrecision(3))); // 3 significant digits, at least 2 decimals
  return '$' + (t.includes('e') ? v.toFixed(8) : (t.split('.')[1] || '').length < 2 ? v.toFixed(2) : t);
}
const fmtMs = (v) => (v == null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// A bar: value against limit (null limit: unlimited, just the value).
function meter(value, limit, fmt, testid) {
  const text = limit == null ? `${fmt(value)} · no limit` : `${fmt(value)} / ${fmt(limit)}`;
  if (limit == null) return h('div', { class: 'meter none', dataset: { testid } }, h('span', {}, text));
  const pct = limit > 0 ? Math.min(100, (value / limit) * 100) : 100;
  const level = pct >= 90 ? 'bad' : pct >= 70 ? 'warn' : 'ok';
  return h('div', { class: `meter ${level}`, title: `${pct.toFixed(1)}%`, dataset: { testid } },
    h('div', { class: 'track' }, h('div', { class: 'fill', style: `width:${pct}%` })),
    h('span', {}, text));
}

// ---- login ----
async function login(key) {
  adminKey = key;
  await api('GET', '/admin/keys'); // throws on a wrong key
  sessionStorage.setItem(STORE, key);
}

function logout(message) {
  adminKey = '';
  sessionStorage.removeItem(STORE);
  clearInterval(keysTimer);
  keysTimer = null;
  document.querySelectorAll('[data-view]').forEach((v) => show(v, false));
  show($('#tabs'), false); show($('#logout'), false);
  $('#status').textContent = '';
  show($('#login'));
  setError($('#login-error'), message);
  $('#login-key').value = '';
  $('#login-key').focus();
}

function enterApp() {
  show($('#login'), false);
  show($('#tabs')); show($('#logout'));
  selectTab(location.hash.slice(1) || tab);
  refreshKeys();
  clearInterval(keysTimer);
  keysTimer = setInterval(() => { if (!document.hidden) refreshKeys(); }, REFRESH_MS);
}

function selectTab(name) {
  if (!['keys', 'usage', 'routes'].includes(name)) name = 'keys';
  tab = name;
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll('[data-view]').forEach((v) => show(v, v.dataset.view === name));
  if (name === 'usage') refreshUsage();
  if (name === 'routes') refreshRoutes();
}

// ---- keys ----
async function refreshKeys() {
  try {
    const { data } = await api('GET', '/admin/keys');
    keysCache = data;
    renderKeys(data);
    setError($('#keys-error'), '');
    const t = new Date().toLocaleTimeString();
    $('#keys-updated').textContent = `updated ${t} · refreshes every 5 s`;
    $('#status').textContent = '';
  } catch (e) {
    if (!handleAuth(e)) setError($('#keys-error'), `Could not load keys: ${e.message}`);
  }
}

function renderKeys(keys) {
  const wrap = $('#keys-table-wrap');
  if (!keys.length) {
    wrap.replaceChildren(h('p', { class: 'muted pad', dataset: { testid: 'keys-empty' } },
      'No keys yet. Create one below, or add keys to the config file.'));
    return;
  }
  const rows = keys.map((k) => h('tr', { dataset: { testid: `key-row-${k.id}` }, class: k.revoked ? 'revoked' : '' },
    h('td', {}, h('strong', {}, k.id), k.revoked ? h('span', { class: 'badge bad', dataset: { testid: `revoked-${k.id}` } }, 'revoked') : null,
      h('div', { class: 'muted small' }, k.models?.length ? k.models.join(', ') : 'all models')),
    h('td', {}, h('span', { class: `badge ${k.class}` }, k.class)),
    h('td', {}, k.source, k.created_at ? h('div', { class: 'muted small' }, fmtTime(k.created_at)) : null),
    h('td', {}, meter(k.spend?.today ?? 0, k.limits?.daily_usd, fmtUSD, `spend-today-${k.id}`)),
    h('td', {}, meter(k.spend?.month ?? 0, k.limits?.monthly_usd, fmtUSD, `spend-month-${k.id}`)),
    h('td', {}, meter(k.live?.rpm ?? 0, k.limits?.rpm, fmtInt, `live-rpm-${k.id}`)),
    h('td', {}, meter(k.live?.tpm ?? 0, k.limits?.tpm, fmtInt, `live-tpm-${k.id}`)),
    h('td', { class: 'right' }, k.revoked ? '' :
      h('button', { class: 'danger small', dataset: { testid: `revoke-${k.id}` }, onclick: () => revokeKey(k.id) }, 'Revoke'))));
  wrap.replaceChildren(h('table', { id: 'keys-table', dataset: { testid: 'keys-table' } },
    h('thead', {}, h('tr', {}, ['Key', 'Class', 'Source', 'Spend today', 'Spend this month', 'Live RPM', 'Live TPM', '']
      .map((t) => h('th', {}, t)))),
    h('tbody', {}, rows)));
}

async function revokeKey(id) {
  if (!confirm(`Revoke key "${id}"? Requests with it will be refused from the next one on. This cannot be undone.`)) return;
  try {
    await api('DELETE', `/admin/keys/${encodeURIComponent(id)}`);
    await refreshKeys();
  } catch (e) {
    if (!handleAuth(e)) setError($('#keys-error'), `Could not revoke "${id}": ${e.message}`);
  }
}

async function createKey(ev) {
  ev.preventDefault();
  const form = ev.target;
  const err = $('#create-key-error');
  form.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
  const f = Object.fromEntries(new FormData(form));
  const body = { id: f.id.trim(), class: f.class };
  const models = f.models.split(',').map((s) => s.trim()).filter(Boolean);
  if (models.length) body.models = models;
  for (const n of ['daily_usd', 'monthly_usd', 'rpm', 'tpm']) if (f[n].trim() !== '') body[n] = Number(f[n]);
  if (!body.id) { setError(err, 'Give the key an id.'); form.elements.id.classList.add('invalid'); return; }
  const submit = form.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    const key = await api('POST', '/admin/keys', body);
    setError(err, '');
    form.reset();
    $('#new-secret-id').textContent = key.id;
    $('#new-secret').value = key.secret;
    $('#copy-secret').textContent = 'Copy';
    show($('#new-secret-box'));
    $('#new-secret').select();
    await refreshKeys();
  } catch (e) {
    if (handleAuth(e)) return;
    setError(err, e.message);
    if (e.param && form.elements[e.param]) form.elements[e.param].classList.add('invalid');
  } finally {
    submit.disabled = false;
  }
}

// ---- usage ----
function usageParams(group) {
  const days = Number($('#usage-range').value);
  const since = new Date(Date.now() - (days - 1) * 86400e3).toISOString().slice(0, 10);
  const p = new URLSearchParams({ group_by: group, since });
  if ($('#usage-key').value) p.set('key', $('#usage-key').value);
  return { p, days, since };
}

async function refreshUsage() {
  const sel = $('#usage-key');
  const chosen = sel.value;
  sel.replaceChildren(h('option', { value: '' }, 'all keys'),
    ...keysCache.map((k) => h('option', { value: k.id }, k.id)));
  if (chosen && !keysCache.some((k) => k.id === chosen)) sel.append(h('option', { value: chosen }, chosen));
  sel.value = chosen;
  const group = $('#usage-group').value;
  try {
    const daily = api('GET', `/admin/usage?${usageParams('day').p}`);
    const grouped = group === 'day' ? daily : api('GET', `/admin/usage?${usageParams(group).p}`);
    const [d, g] = await Promise.all([daily, grouped]);
    setError($('#usage-error'), '');
    renderTotals(d.data);
    renderChart(d.data, usageParams('day'));
    renderUsageTable(g.data, group);
  } catch (e) {
    if (!handleAuth(e)) setError($('#usage-error'), `Could not load usage: ${e.message}`);
  }
}

function renderTotals(rows) {
  const sum = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
  const items = [['Requests', fmtInt(sum('requests'))], ['Cost', fmtUSD(sum('cost_usd'))],
    ['Tokens in', fmtInt(sum('tokens_in'))], ['Tokens out', fmtInt(sum('tokens_out'))],
    ['Cached in', fmtInt(sum('tokens_cache_read'))], ['Caching saved', fmtUSD(sum('cache_saved_usd'))],
    ['Cache hits', fmtInt(sum('response_cache_hits'))], ['Hits saved', fmtUSD(sum('response_cache_saved_usd'))],
    ['Errors', fmtInt(sum('errors'))], ['Fallbacks', fmtInt(sum('fallbacks'))]];
  $('#usage-totals').replaceChildren(...items.map(([l, v]) => h('div', { class: 'card stat' }, h('div', { class: 'muted small' }, l), h('b', {}, v))));
}

// Bars: cost per day (left axis); line: requests per day (right axis). Missing days are 0.
function renderChart(rows, { days, since }) {
  const box = $('#usage-chart');
  const byDay = new Map(rows.map((r) => [r.group, r]));
  const list = [];
  for (let i = 0; i < days; i++) {
    const d = new Date(Date.parse(`${since}T00:00:00Z`) + i * 86400e3).toISOString().slice(0, 10);
    list.push({ day: d, cost: byDay.get(d)?.cost_usd || 0, req: byDay.get(d)?.requests || 0 });
  }
  if (!rows.length) {
    box.replaceChildren(h('p', { class: 'muted empty', dataset: { testid: 'usage-empty' } }, 'No requests in this period yet.'));
    return;
  }
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs, text) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text != null) el.textContent = text;
    return el;
  };
  const W = 900, H = 260, L = 64, R = 56, T = 14, B = 30, pw = W - L - R, ph = H - T - B;
  // Round axis maxima so the 4 grid steps land on readable values.
  const nice = (v) => { const p = 10 ** Math.floor(Math.log10(v)); return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * p).find((x) => x >= v * 0.9999); };
  const maxCost = 4 * nice((Math.max(...list.map((x) => x.cost)) || 1) / 4);
  const maxReq = 4 * Math.max(1, Math.ceil(nice((Math.max(...list.map((x) => x.req)) || 1) / 4)));
  const bw = pw / list.length;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Cost and requests per day', class: 'chart' });
  for (let i = 0; i <= 4; i++) {
    const y = T + ph - (ph * i) / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }),
      s('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'axis cost' }, fmtUSD((maxCost * i) / 4)),
      s('text', { x: W - R + 6, y: y + 4, class: 'axis req' }, fmtInt((maxReq * i) / 4)));
  }
  const step = Math.ceil(list.length / 10);
  const pts = [];
  list.forEach((x, i) => {
    const bh = Math.max(1, (x.cost / maxCost) * ph);
    // A full-height hit area per day carries the tooltip; the bar itself only when it costs.
    const g = s('g', { class: 'day' });
    g.append(s('title', {}, `${x.day}: ${fmtUSD(x.cost)}, ${fmtInt(x.req)} requests`),
      s('rect', { x: L + i * bw, y: T, width: bw, height: ph, class: 'hit' }));
    if (x.cost > 0) g.append(s('rect', { x: L + i * bw + bw * 0.15, y: T + ph - bh, width: bw * 0.7, height: bh, class: 'bar' }));
    svg.append(g);
    pts.push(`${L + i * bw + bw / 2},${T + ph - (x.req / maxReq) * ph}`);
    const label = i === list.length - 1 || (i % step === 0 && list.length - 1 - i >= step / 2);
    if (label) svg.append(s('text', { x: L + i * bw + bw / 2, y: H - 10, 'text-anchor': 'middle', class: 'axis' }, x.day.slice(5)));
  });
  svg.append(s('polyline', { points: pts.join(' '), class: 'line' }));
  list.forEach((x, i) => { if (x.req) svg.append(s('circle', { cx: L + i * bw + bw / 2, cy: T + ph - (x.req / maxReq) * ph, r: 3, class: 'dot' })); });
  const legend = h('div', { class: 'legend small' }, h('span', { class: 'sw bar' }), 'cost (USD, left)', h('span', { class: 'sw line' }), 'requests (right)');
  box.replaceChildren(svg, legend);
}

function renderUsageTable(rows, group) {
  const wrap = $('#usage-table-wrap');
  if (!rows.length) { wrap.replaceChildren(h('p', { class: 'muted pad' }, 'No usage recorded for this selection.')); return; }
  const cols = [[group, (r) => r.group || (group === 'key' ? '(no key)' : '(none)')], ['Requests', (r) => fmtInt(r.requests)], ['Tokens in', (r) => fmtInt(r.tokens_in)],
    ['Tokens out', (r) => fmtInt(r.tokens_out)],
    // Input read from the prompt cache (cache writes and reasoning in the tooltip), and what
    // caching saved against every input token at the full input price.
    ['Cached in', (r) => h('span', { title: `written to the cache: ${fmtInt(r.tokens_cache_write || 0)}, reasoning: ${fmtInt(r.tokens_reasoning || 0)}` },
      fmtInt(r.tokens_cache_read || 0))],
    ['Cost', (r) => fmtUSD(r.cost_usd)], ['Caching saved', (r) => fmtUSD(r.cache_saved_usd || 0)],
    // Answers from the response cache, and what they cost when they were fetched.
    ['Cache hits', (r) => h('span', { title: `saved: ${fmtUSD(r.response_cache_saved_usd || 0)}` }, fmtInt(r.response_cache_hits || 0))],
    ['Errors', (r) => fmtInt(r.errors)],
    ['Fallbacks', (r) => fmtInt(r.fallbacks)], ['p50', (r) => fmtMs(r.p50_ms)], ['p95', (r) => fmtMs(r.p95_ms)]];
  wrap.replaceChildren(h('table', { dataset: { testid: 'usage-table' } },
    h('thead', {}, h('tr', {}, cols.map(([t], i) => h('th', { class: i ? 'num' : '' }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map(([, f], i) => h('td', { class: i ? 'num' : '' }, f(r))))))));
}

// ---- routes ----
let editing = new Set(); // routes whose edit form is open: auto-refresh leaves them alone
let routesCache = [];

async function refreshRoutes() {
  try {
    const data = await api('GET', '/admin/routes');
    setError($('#routes-error'), '');
    renderRoutes((routesCache = data.data || []));
    renderFallbacks(data.recent_fallbacks || []);
    renderBalance(await api('GET', '/admin/balance'));
  } catch (e) {
    if (!handleAuth(e)) setError($('#routes-error'), `Could not load routes: ${e.message}`);
  }
}

function chain(r) {
  const cooling = new Set(r.cooling || []);
  const out = [];
  r.targets.forEach((t, i) => {
    if (i) out.push(h('span', { class: 'arrow' }, '→'));
    out.push(h('span', { class: `chip${cooling.has(t) ? ' cooling' : ''}`, title: i ? `fallback ${i}` : 'primary' },
      t, cooling.has(t) ? h('span', { class: 'badge warn', dataset: { testid: `cooling-${t}` } }, 'cooling') : null));
  });
  return h('div', { class: 'chain' }, out);
}

function renderRoutes(routes) {
  const list = $('#routes-list');
  if (!routes.length) {
    list.replaceChildren(h('p', { class: 'muted card' }, 'No routes configured. Requests name a provider/model directly.'));
    return;
  }
  list.replaceChildren(...routes.map((r) => {
    const card = h('div', { class: 'card route', dataset: { testid: `route-${r.name}` } });
    const form = h('form', { class: 'edit', hidden: !editing.has(r.name), dataset: { testid: `route-form-${r.name}` } });
    const err = h('p', { class: 'error', role: 'alert', hidden: true, dataset: { testid: `route-error-${r.name}` } });
    const input = (name, value, attrs = {}) => h('input', { name, value: value ?? '', ...attrs });
    form.append(h('div', { class: 'grid' },
      h('label', { class: 'wide' }, 'Targets, in order (primary first, comma separated)',
        input('targets', r.targets.join(', '), { dataset: { testid: `route-targets-${r.name}` }, required: true })),
      h('label', {}, 'Strategy', h('select', { name: 'strategy' }, ['fallback', 'cheapest', 'weighted', 'least_busy', 'latency'].map((s) =>
        h('option', { value: s, selected: s === r.strategy }, s)))),
      h('label', {}, 'Attempt timeout (ms)', input('attempt_timeout_ms', r.attempt_timeout_ms, { type: 'number', min: 1 })),
      h('label', {}, 'Retries', input('retries', r.retries, { type: 'number', min: 0, max: 10 }))),
    err,
    h('div', { class: 'row' },
      h('button', { type: 'submit', dataset: { testid: `route-save-${r.name}` } }, 'Save'),
      h('button', { type: 'button', class: 'ghost', onclick: () => { editing.delete(r.name); refreshRoutes(); } }, 'Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(form));
      const body = { targets: f.targets.split(',').map((s) => s.trim()).filter(Boolean), strategy: f.strategy };
      if (f.attempt_timeout_ms !== '') body.attempt_timeout_ms = Number(f.attempt_timeout_ms);
      if (f.retries !== '') body.retries = Number(f.retries);
      try {
        const saved = await api('PUT', `/admin/routes/${encodeURIComponent(r.name)}`, body);
        editing.delete(r.name);
        renderRoutes((routesCache = routesCache.map((x) => (x.name === saved.name ? saved : x))));
      } catch (e) {
        if (!handleAuth(e)) setError(err, e.message);
      }
    });
    card.append(
      h('div', { class: 'bar' }, h('h3', {}, r.name),
        h('span', { class: 'muted small' }, `${r.strategy} · attempt timeout ${fmtMs(r.attempt_timeout_ms)} · ${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}`),
        h('span', { class: 'spacer' }),
        h('button', { class: 'ghost small', hidden: editing.has(r.name), dataset: { testid: `route-edit-${r.name}` },
          onclick: () => { editing.add(r.name); show(form); card.querySelector('.bar button').hidden = true; } }, 'Edit')),
      chain(r), form);
    return card;
  }));
}

// Live load per route target, provider key pools, and the response cache (GET /admin/balance).
function renderBalance(b) {
  const wrap = $('#balance-wrap');
  const usd = (x) => `$${Number(x || 0).toFixed(4)}`;
  const c = b.cache || {};
  const parts = [h('p', { class: 'small', dataset: { testid: 'cache-figures' } },
    `Response cache: ${c.hits || 0} hits, ${c.misses || 0} misses, ${usd(c.saved_usd)} saved · ` +
    `${c.entries || 0} answers, ${((c.bytes || 0) / 1048576).toFixed(1)} of ${((c.max_bytes || 0) / 1048576).toFixed(0)} MiB` +
    (c.shared ? ' · shared through Redis' : ''))];
  const spread = (b.routes || []).filter((r) => ['weighted', 'least_busy', 'latency'].includes(r.strategy) || r.cache);
  if (spread.length) {
    parts.push(h('table', {},
      h('thead', {}, h('tr', {}, ['Route', 'Target', 'Weight', 'In flight', 'Time to first byte', 'Cache'].map((t) => h('th', {}, t)))),
      h('tbody', {}, spread.flatMap((r) => r.targets.map((t, i) => h('tr', {},
        h('td', {}, i ? '' : `${r.name} (${r.strategy})`),
        h('td', {}, h('span', { class: `chip${t.cooling ? ' cooling' : ''}` }, t.target)),
        h('td', {}, t.weight ?? '–'), h('td', {}, String(t.in_flight)),
        h('td', {}, t.ttfb_ms == null ? '–' : fmtMs(Math.round(t.ttfb_ms))),
        h('td', { class: 'muted small' }, i || !r.cache ? '' : `ttl ${fmtMs(r.cache.ttl_ms)}`)))))));
  }
  for (const p of b.providers || []) {
    parts.push(h('table', {},
      h('thead', {}, h('tr', {}, [`${p.name}: key`, 'Cooling', 'Requests (1 min)', 'Tokens (1 min)', 'rpm / tpm'].map((t) => h('th', {}, t)))),
      h('tbody', {}, p.keys.map((k) => h('tr', {},
        h('td', { class: 'mono small' }, `#${k.index} ${k.digest}`),
        h('td', {}, k.cooling_ms ? fmtMs(k.cooling_ms) : '–'),
        h('td', {}, String(k.requests_last_minute)), h('td', {}, String(k.tokens_last_minute)),
        h('td', {}, `${k.rpm ?? '–'} / ${k.tpm ?? '–'}`))))));
  }
  wrap.replaceChildren(...parts);
}

function renderFallbacks(rows) {
  const wrap = $('#fallbacks-wrap');
  if (!rows.length) { wrap.replaceChildren(h('p', { class: 'muted pad' }, 'No fallbacks recently: every request was served by its first target.')); return; }
  wrap.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, ['Time', 'Route', 'From', 'To', 'Reason', 'Request'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((f) => h('tr', {}, h('td', {}, fmtTime(f.time)), h('td', {}, f.route),
      h('td', {}, h('span', { class: 'chip' }, f.from)), h('td', {}, f.to ? h('span', { class: 'chip' }, f.to) : '–'),
      h('td', {}, f.reason), h('td', { class: 'muted small mono' }, f.request_id))))));
}

// ---- wiring ----
$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = $('#login-key').value.trim();
  const btn = $('#login-submit');
  btn.disabled = true;
  setError($('#login-error'), '');
  try {
    await login(key);
    enterApp();
  } catch (e) {
    adminKey = '';
    const msg = e.status === 403 ? 'Wrong admin key.' : e.status === 401 ? 'An admin key is required.'
      : e.status === 404 ? 'The admin API is disabled on this gateway (admin.key is not set).' : e.message;
    setError($('#login-error'), msg);
  } finally {
    btn.disabled = false;
  }
});
$('#logout').addEventListener('click', () => logout(''));
$('#tabs').addEventListener('click', (ev) => { if (ev.target.dataset.tab) selectTab(ev.target.dataset.tab); });
window.addEventListener('hashchange', () => { if (adminKey) selectTab(location.hash.slice(1)); });
$('#create-key').addEventListener('submit', createKey);
$('#copy-secret').addEventListener('click', async () => {
  const input = $('#new-secret');
  try { await navigator.clipboard.writeText(input.value); } catch { input.select(); document.execCommand('copy'); }
  $('#copy-secret').textContent = 'Copied';
});
$('#dismiss-secret').addEventListener('click', () => { $('#new-secret').value = ''; show($('#new-secret-box'), false); });
['#usage-group', '#usage-range', '#usage-key'].forEach((s) => $(s).addEventListener('change', refreshUsage));
$('#usage-refresh').addEventListener('click', refreshUsage);
$('#routes-refresh').addEventListener('click', refreshRoutes);
setInterval(() => { if (adminKey && tab === 'routes' && !editing.size && !document.hidden) refreshRoutes(); }, REFRESH_MS);

if (adminKey) {
  $('#status').textContent = 'Signing in…';
  login(adminKey).then(enterApp, (e) => logout(e.status ? `Please sign in again: ${e.message}` : e.message));
} else {
  logout('');
}
