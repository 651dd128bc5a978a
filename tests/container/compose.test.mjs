// docker/compose.yaml under podman-compose: Redis with its append-only file, two gateway replicas
// sharing it, nginx in front on a port published on 127.0.0.1. Through the entry point only: a
// key made through the admin API, 40 requests at once against a budget worth 10 landing on both
// replicas and admitting exactly 10, a replica stopped with the entry point still answering, and
// Redis restarted with the spend kept.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import {
  IMAGE, PREFIX, ROOT, client, eventually, freePort, http, pid1Memory, podman, podmanStatus,
  removeAll,
} from './lib.mjs';

const PROJECT = `${PREFIX}-compose`;
const name = (service) => `${PROJECT}_${service}_1`;
const REPLICAS = [name('michi-1'), name('michi-2')];
const ADMIN_KEY = randomBytes(24).toString('hex');

// The compose files run from a copy, so that a docker/.env of the checkout (which
// podman-compose would prefer to this environment) plays no part.
const dir = path.join(process.env.MICHI_CT_WORK, 'compose');
let env;
let origin;
let admin;

const execFileP = promisify(execFile);
async function compose(...args) {
  try {
    return (await execFileP('podman-compose', ['-p', PROJECT, '-f', path.join(dir, 'compose.yaml'),
      ...args], { env, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    throw new Error(`podman-compose ${args.join(' ')}: ${err.stderr || err.message}`);
  }
}

function everything() {
  return {
    containers: [name('entry'), ...REPLICAS, name('redis')],
    volumes: ['redis-data', 'michi-1-data', 'michi-2-data'].map((v) => `${PROJECT}_${v}`),
    networks: [`${PROJECT}_default`],
  };
}

/** Access-log lines of a replica for `key` on `urlPath` (logged without /v1): [{ status }]. */
async function served(replica, key, urlPath = '/chat/completions') {
  const logs = await podman('logs', replica);
  return logs.split('\n')
    .filter((l) => l.includes(` ${urlPath} key=${key} `))
    .map((l) => ({ status: Number(l.match(/ status=(\d+) /)?.[1]) }));
}

before(async () => {
  removeAll(everything());
  mkdirSync(dir, { recursive: true });
  for (const f of ['compose.yaml', 'michi.compose.yaml', 'nginx.conf']) {
    copyFileSync(path.join(ROOT, 'docker', f), path.join(dir, f));
  }
  const port = await freePort();
  env = {
    ...process.env,
    MICHI_IMAGE: IMAGE,
    MICHI_ADMIN_KEY: ADMIN_KEY,
    REDIS_PASSWORD: randomBytes(24).toString('hex'),
    MICHI_PUBLISH: `127.0.0.1:${port}`,
  };
  await compose('up', '-d', '--no-build');
  origin = `http://127.0.0.1:${port}`;
  admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
  // Both replicas up: each has answered /readyz through the entry point.
  await eventually(async () => {
    await http(`${origin}/readyz`, { timeout: 2000 });
    for (const r of REPLICAS) {
      if (!(await podman('logs', r)).includes(' GET /readyz ')) return false;
    }
    return true;
  }, { ms: 60_000, what: 'both replicas answering /readyz through the entry point' });
});

after(async () => {
  if (process.exitCode) {
    for (const c of everything().containers) {
      console.log(`--- ${c}\n${(await podmanStatus('logs', '--tail', '40', c)).stdout}`);
    }
  }
  await compose('down', '-v').catch(() => {});
  removeAll(everything());
});

/** Makes a key through the admin API on the entry point; resolves once both replicas know it. */
async function makeKey(body) {
  const r = await http(`${origin}/admin/keys`, { method: 'POST', headers: admin, body });
  assert.equal(r.status, 201, r.text);
  const { secret } = r.json();
  // Each replica authenticates it (the key reaches the other through Redis): polled through
  // the entry point until both access logs show it accepted. /v1/models costs nothing.
  await eventually(async () => {
    await http(`${origin}/v1/models`, { headers: { authorization: `Bearer ${secret}` } });
    for (const rep of REPLICAS) {
      if (!(await served(rep, body.id, '/models')).some((l) => l.status === 200)) return false;
    }
    return true;
  }, { what: `key ${body.id} accepted by both replicas` });
  return secret;
}

async function spendToday(id) {
  const r = await http(`${origin}/admin/keys/${id}`, { headers: admin });
  assert.equal(r.status, 200, r.text);
  return r.json().spend.today;
}

/**
 * Resolves to what `call` resolves to, or rejects with its error, once it no longer fails with
 * 503 (the ledger in Redis not reached yet: the gateway connects on first use, and again after
 * a failure at most once a second); bounded.
 */
async function guarded(call) {
  let outcome;
  await eventually(async () => {
    try {
      outcome = { value: await call() };
    } catch (err) {
      if (err.status === 503) throw err;
      outcome = { err };
    }
    return true;
  }, { what: 'an answer not 503 (the ledger in Redis reached)' });
  if (outcome.err) throw outcome.err;
  return outcome.value;
}

const message = 'the same question, priced the same each time';
let maxTokens;
let cost;
let budgetSecret;
let probeSecret;

test('a key made through the admin API answers on the entry point', async () => {
  probeSecret = await makeKey({ id: 'probe', class: 'application' });
  const openai = client(origin, probeSecret);
  // Each replica connects to Redis on first use: a 503 ledger_unavailable until then. The
  // entry point may send every try to the same replica, so both are asked until both have
  // answered one (their access logs say), before anything is counted.
  const ask = () => openai.chat.completions.create({
    model: 'echo/metered', messages: [{ role: 'user', content: message }],
  });
  await eventually(async () => {
    try {
      await ask();
    } catch (err) {
      if (err.status !== 503) throw err;
    }
    for (const rep of REPLICAS) {
      if (!(await served(rep, 'probe')).some((l) => l.status === 200)) return false;
    }
    return true;
  }, { what: 'both replicas reach the ledger in Redis' });
  const first = await guarded(ask);
  assert.equal(first.choices[0].message.content, message);
  // With max_tokens at the answer's own length, what a request holds while in flight is what
  // it is charged: the budget below admits the same number of requests whatever their timing.
  maxTokens = first.usage.completion_tokens;
  const before = await spendToday('probe');
  await openai.chat.completions.create({
    model: 'echo/metered', max_tokens: maxTokens, messages: [{ role: 'user', content: message }],
  });
  cost = (await spendToday('probe')) - before;
  assert.ok(cost > 0, `echo/metered is priced (cost ${cost})`);
});

test('40 requests at once, budget worth 10: both replicas serve, exactly 10 admitted', async () => {
  budgetSecret = await makeKey({ id: 'budget', class: 'application', daily_usd: cost * 9.5 });
  const openai = client(origin, budgetSecret);
  const results = await Promise.all(Array.from({ length: 40 }, () =>
    openai.chat.completions.create({
      model: 'echo/metered', max_tokens: maxTokens, messages: [{ role: 'user', content: message }],
    }).then(() => 200, (err) => {
      assert.equal(err.status, 403, err.message);
      assert.equal(err.code, 'budget_exceeded', err.message);
      return 403;
    })));
  assert.equal(results.filter((s) => s === 200).length, 10);
  assert.equal(results.filter((s) => s === 403).length, 30);
  // Each replica served part of them (its own access log says so), and they agree on 10.
  const lines = await Promise.all(REPLICAS.map((r) => served(r, 'budget')));
  for (const [i, l] of lines.entries()) assert.ok(l.length > 0, `${REPLICAS[i]} served none`);
  assert.equal(lines[0].length + lines[1].length, 40);
  const ok = lines.flat().filter((l) => l.status === 200).length;
  assert.equal(ok, 10);
  assert.ok(Math.abs((await spendToday('budget')) - 10 * cost) < 1e-9);
  for (const r of REPLICAS) {
    const mem = await pid1Memory(r);
    console.log(`${r}: RSS ${mem.rssMB.toFixed(1)} MB, peak ${mem.peakMB.toFixed(1)} MB`);
  }
});

test('one replica stopped: the entry point keeps answering', async () => {
  await podman('stop', '-t', '40', REPLICAS[0]);
  assert.equal(await podman('inspect', '--format', '{{.State.ExitCode}}', REPLICAS[0]), '0');
  const openai = client(origin, probeSecret);
  for (let i = 0; i < 6; i++) {
    const r = await openai.chat.completions.create({
      model: 'echo/echo-1', messages: [{ role: 'user', content: `still here ${i}` }],
    });
    assert.equal(r.choices[0].message.content, `still here ${i}`);
  }
});

test('Redis restarted: the spend is kept (append-only file)', async () => {
  const spent = await spendToday('budget');
  await podman('restart', '-t', '10', name('redis'));
  // The gateway reconnects by itself; until then guarded requests get 503 ledger_unavailable.
  const openai = client(origin, budgetSecret);
  const err = await guarded(() => openai.chat.completions.create({
    model: 'echo/metered', max_tokens: maxTokens, messages: [{ role: 'user', content: message }],
  })).then(() => ({ status: 200 }), (e) => e);
  assert.equal(err.status, 403, 'the budget is still spent');
  assert.equal(err.code, 'budget_exceeded');
  assert.ok(Math.abs((await spendToday('budget')) - spent) < 1e-9);
});
