// Helpers of the container tests: podman, free ports, bounded polling, the OpenAI SDK.
import { execFile, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import { promisify } from 'node:util';

// The image under test and the prefix of every name the tests give (set by run.sh).
export const IMAGE = process.env.MICHI_CT_IMAGE;
export const PREFIX = process.env.MICHI_CT_PREFIX;
if (!IMAGE || !PREFIX) throw new Error('run through tests/container/run.sh');
export const ROOT = new URL('../../', import.meta.url).pathname;

// The openai SDK of tests/e2e (run.sh installs it there when missing).
const requireE2e = createRequire(new URL('../e2e/package.json', import.meta.url));
export const { default: OpenAI } = await import(requireE2e.resolve('openai'));

const execFileP = promisify(execFile);

/** Runs podman; resolves to its stdout (trimmed), rejects with its stderr on failure. */
export async function podman(...args) {
  try {
    const { stdout } = await execFileP('podman', args, { maxBuffer: 64 << 20 });
    return stdout.trim();
  } catch (err) {
    throw new Error(`podman ${args.join(' ')}: ${err.stderr || err.message}`);
  }
}

/** podman without throwing: { code, stdout, stderr }. */
export async function podmanStatus(...args) {
  try {
    const { stdout, stderr } = await execFileP('podman', args, { maxBuffer: 64 << 20 });
    return { code: 0, stdout: stdout.trim(), stderr };
  } catch (err) {
    return { code: err.code ?? 1, stdout: (err.stdout || '').trim(), stderr: err.stderr || '' };
  }
}

/** Removes containers, pods, volumes, networks by name, ignoring the ones that are gone. */
export function removeAll({ containers = [], pods = [], volumes = [], networks = [] }) {
  const quiet = (args) => {
    try {
      execFileSync('podman', args, { stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  // -v: with the anonymous volumes they made (the image's VOLUME, a pod's emptyDir).
  for (const c of containers) quiet(['rm', '-f', '-v', '-t', '0', c]);
  for (const p of pods) {
    let inPod = [];
    try {
      inPod = execFileSync('podman', ['ps', '-a', '--filter', `pod=${p}`, '--format', '{{.Names}}'],
        { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch {
      // no such pod
    }
    for (const c of inPod) quiet(['rm', '-f', '-v', '-t', '0', c]);
    quiet(['pod', 'rm', '-f', '-t', '0', p]);
  }
  for (const v of volumes) quiet(['volume', 'rm', '-f', v]);
  for (const n of networks) quiet(['network', 'rm', '-f', n]);
}

/** A TCP port on 127.0.0.1 that the OS says is free now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Calls `check` until it returns a truthy value (resolved to) or `ms` pass (rejects naming
 * `what` and the last error). Each call waits for the previous one; `every` ms between calls.
 */
export async function eventually(check, { ms = 30_000, every = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${ms} ms${last ? ` (last: ${last.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/** fetch with a timeout; resolves to { status, headers, text, json() }. */
export async function http(url, { method = 'GET', headers = {}, body, timeout = 10_000 } = {}) {
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeout),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

/** The OpenAI SDK on `origin` with `key`, no retries (every answer is the gateway's own). */
export function client(origin, key) {
  return new OpenAI({ baseURL: `${origin}/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
}

/** A key made by the image's own `keygen`: { secret, sha256 }. */
export async function keygen(cls = 'developer') {
  const out = await podman('run', '--rm', IMAGE, 'keygen', '--class', cls);
  const secret = out.match(/^secret: (mk-\S+)$/m)?.[1];
  const sha256 = out.match(/^secret_sha256: ([0-9a-f]{64})$/m)?.[1];
  if (!secret || !sha256) throw new Error(`unexpected keygen output:\n${out}`);
  return { secret, sha256, out };
}

/** The Uid line of /proc/1/status in a container: [real, effective, saved, filesystem]. */
export async function pid1Uids(container) {
  const status = await podman('exec', container, 'cat', '/proc/1/status');
  return status.match(/^Uid:\s+(.*)$/m)[1].trim().split(/\s+/).map(Number);
}

/** Resident and peak resident memory of PID 1 in a container, in MB. */
export async function pid1Memory(container) {
  const status = await podman('exec', container, 'cat', '/proc/1/status');
  const kb = (field) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))[1]);
  return { rssMB: kb('VmRSS') / 1024, peakMB: kb('VmHWM') / 1024 };
}
