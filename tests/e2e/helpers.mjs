// Test helpers: run a real michi-gateway process, and fake upstreams (OpenAI-compatible,
// Anthropic, Gemini) that record what the gateway sent them.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const MICHI_BIN =
  process.env.MICHI_BIN ||
  fileURLToPath(new URL('../../build/dev/michi-gateway', import.meta.url));

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

/** Rejects with `what timed out` unless `promise` settles within `ms`. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts `bin` with `args` and waits (START_TIMEOUT_MS) for a line of its output matching
 * `ready` (`env`: its environment). Resolves to { child, lines (all it printed), exited (resolves to { code, signal }),
 * match }; on an exit or a timeout first, kills it and rejects with its output (`name` names it).
 */
async function startProcess(bin, args, ready, name, env = process.env) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines = [];
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
  const matched = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      const m = line.match(ready);
      if (m) resolve(m);
    });
    createInterface({ input: child.stderr }).on('line', (line) => lines.push(line));
    child.on('error', reject);
    exited.then(({ code, signal }) =>
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready`)));
  });
  try {
    const match = await withTimeout(matched, START_TIMEOUT_MS, `waiting for ${name}`);
    return { child, lines, exited, match };
  } catch (err) {
    child.kill('SIGKILL');
    err.message += `\n--- ${name} output ---\n${lines.join('\n')}`;
    throw err;
  }
}

/** A fresh developer key: { secret, sha256 }, made by the daemon's own `keygen`. */
export function keygen(cls = 'developer') {
  const out = execFileSync(MICHI_BIN, ['keygen', '--class', cls], { encoding: 'utf8' });
  const secret = out.match(/^secret:\s*(\S+)$/m)?.[1];
  const sha256 = out.match(/^secret_sha256:\s*([0-9a-f]{64})$/m)?.[1];
  if (!secret || !sha256) throw new Error(`unexpected keygen output:\n${out}`);
  return { secret, sha256 };
}

/**
 * Starts michi-gateway on an ephemeral port with a config made of `providers` and `models`
 * (plus the echo provider and one developer key, and any extra `keys` entries) in a fresh
 * temp dir, with `routes` when given. `admin: true` turns the admin API and dashboard on with
 * a random admin key (a string is used as the key itself); it is returned as `adminKey`.
 * `redis` (a redis:// URL) puts the ledger there, shared with other gateways on it.
 * Returns { baseURL, origin, secret, adminKey, output(), stop() }; stop() sends SIGTERM and
 * resolves to { code, signal } once the process has exited.
 */
export async function startGateway({ providers = {}, models = {}, keys = [], routes, admin = false, redis } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'michi-e2e-'));
  const { secret, sha256 } = keygen('developer');
  const adminKey = !admin ? undefined
    : typeof admin === 'string' ? admin : `adm-${randomBytes(24).toString('base64url')}`;
  const config = {
    server: { listen: '127.0.0.1:0', drain_timeout: '5s' },
    ...(adminKey ? { admin: { key: adminKey } } : {}),
    store: { sqlite: path.join(dir, 'michi.db'), ...(redis ? { redis } : {}) },
    // `info`, not `warn`: the "listening on" line is logged at info level.
    log: { level: 'info', format: 'text' },
    providers: { echo: { type: 'echo' }, ...providers },
    models: { 'echo/echo-1': { input_per_mtok: 0, output_per_mtok: 0 }, ...models },
    keys: [{ id: 'e2e', class: 'developer', secret_sha256: sha256 }, ...keys],
    ...(routes ? { routes } : {}),
  };
  // JSON is valid YAML, and needs no quoting rules of its own.
  const configFile = path.join(dir, 'michi.yaml');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  let child, lines, exited, m;
  try {
    ({ child, lines, exited, match: m } = await startProcess(
      MICHI_BIN, ['--config', configFile], /listening on (\S+):(\d+)/, 'michi-gateway'));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = Number(m[2]);

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    origin: `http://127.0.0.1:${port}`, // for SDKs that append /v1/... themselves (Anthropic)
    secret,
    adminKey,
    output: () => lines.join('\n'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      try {
        return await withTimeout(exited, STOP_TIMEOUT_MS, 'michi-gateway exit after SIGTERM');
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * A redis-server of the test's own on a free port of 127.0.0.1, saving nothing to disk.
 * Returns { url, stop() }.
 */
export async function startRedis() {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = probe.address().port;
  probe.close();
  await once(probe, 'close');
  const { child, exited } = await startProcess('redis-server', ['--port', String(port), '--bind',
    '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', '', '--protected-mode', 'no'],
  /Ready to accept connections/, 'redis-server');
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited.catch(() => {});
    },
  };
}

/** `event: <name>\n` (when named) and `data: <JSON or text>\n\n`: one SSE event. */
export function sseEvent(data, event) {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  return `${event ? `event: ${event}\n` : ''}data: ${text}\n\n`;
}

/**
 * A fake HTTP upstream on an ephemeral port. Every request is recorded in `requests` as
 * { method, path, headers, body, raw } (body parsed as JSON when it is JSON, raw as text),
 * then answered by
 * `respond(request)` (which may be async), returning one of
 *   { status?, json, headers? }   a JSON answer (status defaults to 200)
 *   { sse: [objects] }            an OpenAI stream: one `data: {...}` event per object, then
 *                                 `data: [DONE]`
 *   { events: [{ event?, data }] } an SSE stream of these events as they are (no [DONE]):
 *                                 Anthropic's named events, or Gemini's `data:` only ones
 *   { raw, status?, contentType? } raw text
 * A respond() that throws answers 500 with the error's message.
 * Returns { origin, requests, close() }.
 */
export async function startFakeServer(respond) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body = raw;
    try { body = JSON.parse(raw); } catch { /* keep the raw text */ }
    const request = { method: req.method, path: req.url, headers: req.headers, body, raw };
    requests.push(request);

    let answer;
    try {
      answer = await respond(request);
    } catch (err) {
      answer = { status: 500, json: { error: { message: `fake upstream: ${err?.stack ?? err}` } } };
    }
    if (answer.sse || answer.events) {
      res.writeHead(answer.status ?? 200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (answer.sse) {
        for (const event of answer.sse) res.write(sseEvent(event));
        res.end(sseEvent('[DONE]'));
      } else {
        for (const { event, data } of answer.events) res.write(sseEvent(data, event));
        res.end();
      }
    } else if (answer.raw !== undefined) {
      res.writeHead(answer.status ?? 200, {
        'content-type': answer.contentType ?? 'text/plain',
        'content-length': Buffer.byteLength(answer.raw),
      });
      res.end(answer.raw);
    } else {
      const text = JSON.stringify(answer.json);
      res.writeHead(answer.status ?? 200, {
        ...answer.headers,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    requests,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * A fake OpenAI-compatible upstream (see startFakeServer for `respond`).
 * Returns { baseURL, origin, requests, close() }; baseURL ends in /v1, as OpenAI base URLs do.
 */
export async function startFakeUpstream(respond) {
  const fake = await startFakeServer(respond);
  return { ...fake, baseURL: `${fake.origin}/v1` };
}

/**
 * A fake Anthropic Messages API (the gateway posts to {base_url}/v1/messages). `respond` as for
 * startFakeServer: { json: message } for a message, { events: anthropicStream(...) } for a
 * stream. Returns { baseURL, origin, requests, close() }; baseURL is the origin, the provider's
 * base_url.
 */
export async function startFakeAnthropic(respond) {
  const fake = await startFakeServer(respond);
  return { ...fake, baseURL: fake.origin };
}

/**
 * A fake Gemini API (the gateway posts to {base_url}/v1beta/models/<model>:generateContent,
 * or :streamGenerateContent?alt=sse). `respond` as for startFakeServer: { json: response },
 * or { events: geminiStream([...responses]) }. Returns { baseURL, origin, requests, close() }.
 */
export async function startFakeGemini(respond) {
  const fake = await startFakeServer(respond);
  return { ...fake, baseURL: fake.origin };
}

/** Anthropic SSE events ({ event, data }) from data objects that carry their `type`. */
export function anthropicStream(datas) {
  return datas.map((data) => ({ event: data.type, data }));
}

/** Gemini SSE events (`data:` only) from GenerateContentResponse objects. */
export function geminiStream(responses) {
  return responses.map((data) => ({ data }));
}

/**
 * Starts michi-gateway on the repository's own config/michi.yaml, as a newcomer would, on an
 * ephemeral port of 127.0.0.1 with its SQLite file in a fresh temp dir and a developer key
 * (MICHI_DEV_KEY_SHA256), in an environment without any `unset` variable (say, the providers'
 * API keys). Returns { baseURL, origin, secret, output(), stop() } as startGateway does.
 */
export async function startDefaultGateway({ unset = [] } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'michi-e2e-default-'));
  const { secret, sha256 } = keygen('developer');
  const env = { ...process.env, MICHI_LISTEN: '127.0.0.1:0', MICHI_DB: path.join(dir, 'michi.db'),
    MICHI_LOG_LEVEL: 'info', MICHI_DEV_KEY_SHA256: sha256 };
  for (const name of unset) delete env[name];
  const configFile = fileURLToPath(new URL('../../config/michi.yaml', import.meta.url));
  let child, lines, exited, m;
  try {
    ({ child, lines, exited, match: m } = await startProcess(
      MICHI_BIN, ['--config', configFile], /listening on (\S+):(\d+)/, 'michi-gateway', env));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = Number(m[2]);
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    origin: `http://127.0.0.1:${port}`,
    secret,
    output: () => lines.join('\n'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      try {
        return await withTimeout(exited, STOP_TIMEOUT_MS, 'michi-gateway exit after SIGTERM');
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
