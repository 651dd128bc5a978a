// Test helpers: run a real michi-gateway process and a fake OpenAI-compatible upstream.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
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
 * temp dir.
 * Returns { baseURL, secret, output(), stop() }; stop() sends SIGTERM and resolves to
 * { code, signal } once the process has exited.
 */
export async function startGateway({ providers = {}, models = {}, keys = [] } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'michi-e2e-'));
  const { secret, sha256 } = keygen('developer');
  const config = {
    server: { listen: '127.0.0.1:0', drain_timeout: '5s' },
    store: { sqlite: path.join(dir, 'michi.db') },
    // `info`, not `warn`: the "listening on" line is logged at info level.
    log: { level: 'info', format: 'text' },
    providers: { echo: { type: 'echo' }, ...providers },
    models: { 'echo/echo-1': { input_per_mtok: 0, output_per_mtok: 0 }, ...models },
    keys: [{ id: 'e2e', class: 'developer', secret_sha256: sha256 }, ...keys],
  };
  // JSON is valid YAML, and needs no quoting rules of its own.
  const configFile = path.join(dir, 'michi.yaml');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const child = spawn(MICHI_BIN, ['--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = []; // everything the daemon printed, for failure messages
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));

  const listening = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      const m = line.match(/listening on (\S+):(\d+)/);
      if (m) resolve(Number(m[2]));
    });
    createInterface({ input: child.stderr }).on('line', (line) => lines.push(line));
    child.on('error', reject);
    exited.then(({ code, signal }) =>
      reject(new Error(`michi-gateway exited (code ${code}, signal ${signal}) before listening`)));
  });

  let port;
  try {
    port = await withTimeout(listening, START_TIMEOUT_MS, 'waiting for "listening on"');
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    err.message += `\n--- michi-gateway output ---\n${lines.join('\n')}`;
    throw err;
  }

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
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

/**
 * A fake OpenAI-compatible upstream on an ephemeral port. Every request is recorded in
 * `requests` as { method, path, headers, body } (body parsed as JSON when it is JSON), then
 * answered by `respond(request)`, which returns one of
 *   { status?, json }   a JSON answer (status defaults to 200)
 *   { sse: [objects] }  an SSE stream: one `data: {...}` event per object, then `data: [DONE]`
 * Returns { baseURL, requests, close() }.
 */
export async function startFakeUpstream(respond) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body = raw;
    try { body = JSON.parse(raw); } catch { /* keep the raw text */ }
    const request = { method: req.method, path: req.url, headers: req.headers, body };
    requests.push(request);

    const answer = respond(request);
    if (answer.sse) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (const event of answer.sse) res.write(`data: ${JSON.stringify(event)}\n\n`);
      res.end('data: [DONE]\n\n');
    } else {
      const text = JSON.stringify(answer.json);
      res.writeHead(answer.status ?? 200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  return {
    baseURL: `http://127.0.0.1:${server.address().port}/v1`,
    requests,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
