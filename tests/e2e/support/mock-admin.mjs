// A stand-in for the daemon's admin API (CONTRACT §8) and /dashboard/ files, for working on
// the dashboard without a gateway build: `node support/mock-admin.mjs [port]` (admin key "admin").
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../../../web/dashboard/', import.meta.url));
const TYPES = { html: 'text/html', js: 'text/javascript', css: 'text/css' };
const ADMIN = process.env.ADMIN_KEY || 'admin';
const day = (n) => new Date(Date.now() - n * 86400e3).toISOString().slice(0, 10);
const key = (id, cls, source, limits, spend, live, extra = {}) => ({
  id, class: cls, source, models: [], limits: { rpm: null, tpm: null, daily_usd: null, monthly_usd: null, ...limits },
  spend, live, revoked: false, created_at: source === 'admin' ? new Date().toISOString() : null, ...extra });
const keys = [
  key('alice-laptop', 'developer', 'config', { rpm: 30, tpm: 100000, daily_usd: 5, monthly_usd: 50 }, { today: 4.7, month: 21.3 }, { rpm: 12, tpm: 48000 }, { models: ['openai/*', 'auto'] }),
  key('billing-svc', 'application', 'config', { rpm: 6000, tpm: 5000000 }, { today: 12.5, month: 310 }, { rpm: 840, tpm: 900000 }),
  key('research-agent', 'agent', 'admin', { rpm: 120, tpm: 500000, daily_usd: 20 }, { today: 2.1, month: 2.1 }, { rpm: 3, tpm: 1200 }),
];
const routes = [
  { name: 'openai/gpt-4o-mini', strategy: 'fallback', targets: ['openai/gpt-4o-mini', 'claude/claude-3-5-haiku', 'deepseek/deepseek-v3'], attempt_timeout_ms: 30000, retries: 0, cooling: ['openai/gpt-4o-mini'] },
  { name: 'auto', strategy: 'cheapest', targets: ['openai/gpt-4o-mini', 'deepseek/deepseek-v3'], attempt_timeout_ms: 30000, retries: 1, cooling: [] },
];
const fallbacks = [{ time: new Date().toISOString(), request_id: 'req_abc123', route: 'openai/gpt-4o-mini', from: 'openai/gpt-4o-mini', to: 'claude/claude-3-5-haiku', reason: 'upstream 429' }];
const usageRow = (group, r) => ({ group, requests: r, tokens_in: r * 420, tokens_out: r * 180, cost_usd: r * 0.0009, errors: Math.floor(r / 40), fallbacks: Math.floor(r / 25), p50_ms: 380 + r, p95_ms: 1900 + 3 * r });

function usage(q) {
  const g = q.get('group_by') || 'key';
  if (g === 'day') return Array.from({ length: 12 }, (_, i) => usageRow(day(11 - i), 50 + ((i * 37) % 90)));
  if (g === 'model') return [usageRow('openai/gpt-4o-mini', 610), usageRow('claude/claude-3-5-haiku', 44)];
  return keys.map((k, i) => usageRow(k.id, 100 * (i + 1)));
}

const err = (status, message, param = null, code = 'invalid_request') => ({ status, body: { error: { message, type: 'invalid_request_error', code, param } } });

function route(method, url, body, auth) {
  if (!auth) return err(401, 'Missing admin key.', null, 'invalid_api_key');
  if (auth !== `Bearer ${ADMIN}`) return err(403, 'The admin key is not valid.', null, 'invalid_admin_key');
  const p = url.pathname;
  if (p === '/admin/keys' && method === 'GET') return { body: { object: 'list', data: keys } };
  if (p === '/admin/keys' && method === 'POST') {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(body.id || '')) return err(400, "'id' must be 1-64 characters of [A-Za-z0-9._-].", 'id');
    if (!['developer', 'application', 'agent'].includes(body.class)) return err(400, "'class' must be one of developer, application or agent.", 'class');
    if (keys.some((k) => k.id === body.id)) return err(409, `A key with id "${body.id}" already exists.`, 'id', 'key_exists');
    const k = key(body.id, body.class, 'admin', { daily_usd: body.daily_usd ?? null, monthly_usd: body.monthly_usd ?? null, rpm: body.rpm ?? 60, tpm: body.tpm ?? null },
      { today: 0, month: 0 }, { rpm: 0, tpm: 0 }, { models: body.models || [] });
    keys.push(k);
    return { status: 201, body: { ...k, secret: 'mk-dev-' + Math.random().toString(36).slice(2).padEnd(32, 'x') } };
  }
  const m = p.match(/^\/admin\/keys\/(.+)$/);
  if (m) {
    const k = keys.find((x) => x.id === decodeURIComponent(m[1]));
    if (!k) return err(404, 'No such key.', 'id', 'key_not_found');
    if (method === 'DELETE') { k.revoked = true; return { body: { id: k.id, revoked: true } }; }
    if (method === 'GET') return { body: k };
  }
  if (p === '/admin/usage') return { body: { object: 'list', group_by: url.searchParams.get('group_by') || 'key', data: usage(url.searchParams) } };
  if (p === '/admin/routes' && method === 'GET') return { body: { data: routes, recent_fallbacks: fallbacks } };
  const r = p.match(/^\/admin\/routes\/(.+)$/);
  if (r && method === 'PUT') {
    const name = decodeURIComponent(r[1]);
    if (!Array.isArray(body.targets) || !body.targets.length) return err(400, "'targets' must be a non-empty array of models.", 'targets');
    const bad = body.targets.find((t) => !t.includes('/'));
    if (bad) return err(400, `routes.${name}.targets: unknown model "${bad}"`, 'targets');
    let rt = routes.find((x) => x.name === name);
    if (!rt) routes.push((rt = { name, strategy: 'fallback', attempt_timeout_ms: 30000, retries: 0, cooling: [] }));
    Object.assign(rt, body);
    return { body: rt };
  }
  return err(404, `Unknown path ${p}.`, null, 'not_found');
}

export async function startMock(port = 0) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/dashboard/')) {
      const name = url.pathname.slice(11) || 'index.html';
      try {
        const data = await readFile(DIR + name.replace(/\.\./g, ''));
        res.writeHead(200, { 'content-type': TYPES[name.split('.').pop()] || 'application/octet-stream' });
        return res.end(data);
      } catch { res.writeHead(404); return res.end(); }
    }
    let raw = '';
    for await (const c of req) raw += c;
    const out = route(req.method, url, raw ? JSON.parse(raw) : {}, req.headers.authorization);
    res.writeHead(out.status || 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out.body));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const m = await startMock(Number(process.argv[2] || 8787));
  console.log(`mock admin API on ${m.origin}/dashboard/ (admin key "${ADMIN}")`);
}
