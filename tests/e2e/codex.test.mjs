// End to end: the Codex CLI (`codex exec`, its native binary from the npm package) with a
// custom provider pointing at a real michi-gateway, which translates its Responses API
// stream to a chat-only fake upstream. Offline: a fresh HOME, local ports only, no retries,
// bounded by a timeout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startFakeUpstream, startGateway } from './helpers.mjs';
import { chatBrain, PLAIN_TEXT } from './support/chat_brain.mjs';

const CODEX_BIN = fileURLToPath(new URL('./node_modules/.bin/codex', import.meta.url));
const CODEX_TIMEOUT_MS = 90_000;

/** Runs `codex exec` with `args` in HOME=home; resolves to { code, stdout, stderr }. */
function codexExec(home, env, args) {
  return new Promise((resolve) => {
    const child = execFile(CODEX_BIN, ['exec', '--skip-git-repo-check', ...args], {
      cwd: home,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        CODEX_HOME: path.join(home, '.codex'),
        NO_COLOR: '1',
        RUST_LOG: 'error',
        ...env,
      },
      timeout: CODEX_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}

describe('Codex CLI through michi-gateway', () => {
  let fake;
  let gateway;
  let home;

  before(async () => {
    fake = await startFakeUpstream(chatBrain);
    gateway = await startGateway({
      providers: { chatonly: { type: 'openai', base_url: fake.baseURL, api_key: 'sk-up' } },
      models: { 'chatonly/brain': { upstream: 'brain-1', input_per_mtok: 1, output_per_mtok: 2 } },
    });
    home = await mkdtemp(path.join(tmpdir(), 'michi-codex-'));
    await mkdir(path.join(home, '.codex'));
    await writeFile(path.join(home, '.codex', 'config.toml'), [
      'model = "chatonly/brain"',
      'model_provider = "michi"',
      'check_for_update_on_startup = false',
      '[analytics]',
      'enabled = false',
      '[model_providers.michi]',
      'name = "Michi"',
      `base_url = "${gateway.baseURL}"`,
      'env_key = "MICHI_KEY"',
      'wire_api = "responses"',
      'request_max_retries = 0',
      'stream_max_retries = 0',
      '',
    ].join('\n'));
  });

  after(async () => {
    await gateway?.stop();
    await fake?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('codex exec answers with what the chat-only upstream said', { timeout: CODEX_TIMEOUT_MS + 10_000 }, async () => {
    const n = fake.requests.length;
    const r = await codexExec(home, { MICHI_KEY: gateway.secret }, ['say hi']);
    const output = `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
    assert.equal(r.code, 0, output);
    assert.ok(r.stdout.includes(PLAIN_TEXT), output);

    // What Codex asked, as the chat upstream saw it: its instructions and developer message
    // as system messages, the prompt, its function tools (web search left out), streamed.
    const sent = fake.requests.slice(n).filter((s) => s.path === '/v1/chat/completions');
    assert.ok(sent.length >= 1, output);
    const body = sent.at(-1).body;
    assert.equal(body.model, 'brain-1');
    assert.equal(body.stream, true);
    assert.equal(body.messages[0].role, 'system');
    const users = body.messages.filter((m) => m.role === 'user').map((m) => m.content);
    assert.ok(users.some((c) => c.includes('say hi')), JSON.stringify(body.messages));
    assert.ok(Array.isArray(body.tools) && body.tools.length > 0);
    assert.ok(body.tools.every((t) => t.type === 'function'));
    assert.ok(!JSON.stringify(body.tools).includes('web_search'));
  });
});
