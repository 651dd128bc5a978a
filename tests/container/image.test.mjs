// The image alone (docker/Dockerfile): keygen, /healthz, a chat and a stream through the
// OpenAI SDK on a port published on 127.0.0.1, a non-root PID 1, the SQLite file in the volume,
// the HEALTHCHECK, and SIGTERM draining a stream still in flight before exiting 0.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http_ from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  IMAGE, PREFIX, client, eventually, freePort, http, keygen, pid1Memory, pid1Uids, podman,
  podmanStatus, removeAll,
} from './lib.mjs';

const NAME = `${PREFIX}-app`;
const DRAIN = `${PREFIX}-drain`;
let origin;
let port;
let key;

/**
 * A fake OpenAI-type upstream on 127.0.0.1 that answers a streamed chat with the first of
 * `pieces` at once and the others (then usage and [DONE]) only after release().
 */
async function holdingUpstream(pieces) {
  let release;
  const released = new Promise((r) => { release = r; });
  const server = http_.createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = (delta, finish = null, usage) => res.write(`data: ${JSON.stringify({
        id: 'chatcmpl-held', object: 'chat.completion.chunk', created: 1, model: 'model-1',
        choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }],
        ...(usage ? { usage } : {}),
      })}\n\n`);
      event({ role: 'assistant', content: pieces[0] });
      await released;
      for (const p of pieces.slice(1)) event({ content: p });
      event({}, 'stop');
      event(null, null, { prompt_tokens: 1, completion_tokens: pieces.length, total_tokens: 5 });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    release,
    close: () => { release(); server.closeAllConnections(); server.close(); },
  };
}

before(async () => {
  removeAll({ containers: [NAME, DRAIN] });
  key = await keygen('developer');
  port = await freePort();
  await podman('run', '-d', '--name', NAME, '-p', `127.0.0.1:${port}:8080`,
    '-e', `MICHI_DEV_KEY_SHA256=${key.sha256}`, IMAGE);
  origin = `http://127.0.0.1:${port}`;
  await eventually(async () => (await http(`${origin}/readyz`, { timeout: 2000 })).status === 200,
    { what: 'the container answering /readyz' });
});

after(async () => {
  if (process.exitCode) {
    for (const c of [NAME, DRAIN]) console.log((await podmanStatus('logs', c)).stdout);
  }
  removeAll({ containers: [NAME, DRAIN] });
});

test('`docker run IMAGE keygen --class developer` prints a key', () => {
  assert.match(key.out, /^secret: mk-dev-[A-Za-z0-9]{40}$/m);
  assert.match(key.out, /^secret_sha256: [0-9a-f]{64}$/m);
});

test('/healthz answers on the published port', async () => {
  const r = await http(`${origin}/healthz`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), { status: 'ok' });
});

test('a chat and a streamed chat on echo through the OpenAI SDK', async () => {
  const openai = client(origin, key.secret);
  const text = 'hello from inside a container';
  const r = await openai.chat.completions.create({
    model: 'echo/echo-1', messages: [{ role: 'user', content: text }],
  });
  assert.equal(r.choices[0].message.content, text);
  assert.ok(r.usage.total_tokens > 0);

  const stream = await openai.chat.completions.create({
    model: 'echo/echo-1', stream: true, messages: [{ role: 'user', content: text }],
  });
  let got = '';
  let chunks = 0;
  let finish;
  for await (const chunk of stream) {
    chunks++;
    got += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(got, text);
  assert.ok(chunks > 3, `${chunks} chunks`);
  assert.equal(finish, 'stop');

  await assert.rejects(
    client(origin, 'mk-dev-not-a-key').chat.completions.create({
      model: 'echo/echo-1', messages: [{ role: 'user', content: text }],
    }),
    (err) => err.status === 401,
  );
});

test('the gateway is PID 1 and does not run as root', async () => {
  const cmdline = await podman('exec', NAME, 'cat', '/proc/1/cmdline');
  assert.match(cmdline, /^michi-gateway\0--config\0\/etc\/michi\/michi\.yaml\0$/);
  const uids = await pid1Uids(NAME);
  assert.equal(uids.length, 4);
  for (const uid of uids) assert.notEqual(uid, 0, `PID 1 uids ${uids}`);
  assert.equal(await podman('exec', NAME, 'id', '-un'), 'michi');
});

test('the SQLite file is in the volume /var/lib/michi', async () => {
  const mounts = JSON.parse(await podman('inspect', '--format', '{{json .Mounts}}', NAME));
  assert.ok(mounts.some((m) => m.Destination === '/var/lib/michi'), JSON.stringify(mounts));
  const files = (await podman('exec', NAME, 'ls', '/var/lib/michi')).split('\n');
  assert.ok(files.includes('michi.db'), files.join(' '));
});

test('the HEALTHCHECK passes with what the image has', async () => {
  const [img] = JSON.parse(await podman('image', 'inspect', IMAGE));
  const hc = img.Healthcheck ?? img.Config.Healthcheck;
  assert.deepEqual(hc?.Test, ['CMD', 'michi-gateway', 'healthcheck']);
  const r = await podmanStatus('healthcheck', 'run', NAME);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const health = JSON.parse(await podman('inspect', '--format', '{{json .State.Health}}', NAME));
  assert.equal(health.Status, 'healthy');
  assert.match(health.Log.at(-1).Output, /^healthy: http:\/\/127\.0\.0\.1:8080\/healthz: 200 OK/);
  const mem = await pid1Memory(NAME);
  console.log(`gateway RSS after the tests above: ${mem.rssMB.toFixed(1)} MB ` +
    `(peak ${mem.peakMB.toFixed(1)} MB)`);
});

test('SIGTERM drains a stream in flight, then the container exits 0', async () => {
  // A stream whose upstream holds it open: a fake OpenAI-type upstream in this process sends
  // the first chunk and the rest only when the test says so. The gateway container shares the
  // host's network here (listening on 127.0.0.1 only), so that it reaches the fake upstream
  // on 127.0.0.1. SIGTERM arrives while the stream is open; the rest is released after the
  // gateway has started draining; the client must get all of it, then the container exit 0.
  const upstream = await holdingUpstream(['one ', 'two ', 'three ', 'four']);
  const gwPort = await freePort();
  const cfg = path.join(process.env.MICHI_CT_WORK, 'drain.yaml');
  writeFileSync(cfg, `server: { listen: "127.0.0.1:${gwPort}", drain_timeout: 30s }
store: { sqlite: /var/lib/michi/michi.db }
providers:
  slow: { type: openai, base_url: "http://127.0.0.1:${upstream.port}/v1", api_key: test }
models:
  slow/model-1: { input_per_mtok: 0, output_per_mtok: 0 }
keys:
  - { id: drain, class: developer, secret_sha256: "${key.sha256}" }
key_classes:
  developer: { rpm: 600 }
`, { mode: 0o644 });
  try {
    await podman('run', '-d', '--name', DRAIN, '--network', 'host',
      '-v', `${cfg}:/etc/michi/michi.yaml:ro`, IMAGE);
    const gw = `http://127.0.0.1:${gwPort}`;
    await eventually(async () => (await http(`${gw}/readyz`, { timeout: 2000 })).status === 200,
      { what: 'the draining test container answering /readyz' });
    const stream = await client(gw, key.secret).chat.completions.create({
      model: 'slow/model-1', stream: true, messages: [{ role: 'user', content: 'count' }],
    });
    const it = stream[Symbol.asyncIterator]();
    let got = '';
    while (got === '') {
      const r = await it.next();
      assert.ok(!r.done, 'the stream ended early');
      got += r.value.choices[0]?.delta?.content ?? '';
    }
    assert.equal(got, 'one ');

    await podman('kill', '--signal', 'TERM', DRAIN);
    await eventually(async () => /signal 15: draining/.test(await podman('logs', DRAIN)),
      { what: 'the gateway logging that it drains' });
    // Draining: the probes still answer (/readyz with 503, so load balancers move away),
    // a new request gets a 503, and with the stream open the container is up.
    await eventually(async () => (await http(`${gw}/readyz`, { timeout: 2000 })).status === 503,
      { what: '/readyz answering 503 while draining' });
    assert.equal(await podman('inspect', '--format', '{{.State.Running}}', DRAIN), 'true');

    upstream.release();
    let finish;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      got += r.value.choices[0]?.delta?.content ?? '';
      finish = r.value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(got, 'one two three four', 'the whole answer arrived');
    assert.equal(finish, 'stop');

    assert.equal(await podman('wait', DRAIN), '0');
    const logs = await podman('logs', DRAIN);
    assert.match(logs, /stopped/);
    assert.doesNotMatch(logs, /drain timeout/);
  } finally {
    upstream.close();
  }
});
