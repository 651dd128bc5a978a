// End to end: Claude Code (`claude -p`, its native binary from npm, offline) through a real
// michi-gateway: to an OpenAI-type provider (its Anthropic request translated, the `system` turns
// it puts inside `messages` included) and to an Anthropic-type provider (passed through: prompt
// caching, extended thinking, context management, effort and its beta headers reach the
// provider as Claude Code sent them). Fake upstreams on this machine record what they got.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { anthropicStream, startFakeAnthropic, startFakeUpstream, startGateway } from './helpers.mjs';

const CLAUDE_BIN = fileURLToPath(new URL('./node_modules/.bin/claude', import.meta.url));
const CLAUDE_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT = { timeout: CLAUDE_TIMEOUT_MS + 15_000 };
const HOOK_TIMEOUT = { timeout: 30_000 };
const OPENAI_MODEL = 'fake/gpt-test';
// A model Claude Code knows: it sends it extended thinking with a budget and an effort.
const CLAUDE_MODEL = 'claude/claude-opus-4-5';
const OPENAI_TEXT = 'Hi from the OpenAI-type fake.';
const CLAUDE_TEXT = 'Hi from the Anthropic-type fake.';
const ANTHROPIC_KEY = 'sk-ant-upstream-test';

// ---- the fake upstreams: each answers any request with its text ----

function openaiRespond({ body }) {
  const usage = { prompt_tokens: 30, completion_tokens: 6, total_tokens: 36 };
  if (!body.stream) {
    return {
      json: {
        id: 'chatcmpl-cc', object: 'chat.completion', created: 1_700_000_000, model: 'gpt-test',
        choices: [{ index: 0, message: { role: 'assistant', content: OPENAI_TEXT }, finish_reason: 'stop' }],
        usage,
      },
    };
  }
  const chunk = (choices, extra = {}) => ({
    id: 'chatcmpl-cc', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-test', choices, ...extra,
  });
  return {
    sse: [
      chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: OPENAI_TEXT }, finish_reason: null }]),
      chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]),
      ...(body.stream_options?.include_usage ? [chunk([], { usage })] : []),
    ],
  };
}

function anthropicRespond({ body }) {
  const message = {
    id: 'msg_cc', type: 'message', role: 'assistant', model: body.model, content: [],
    stop_reason: null, stop_sequence: null,
    usage: { input_tokens: 40, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
  };
  if (!body.stream) {
    return { json: { ...message, content: [{ type: 'text', text: CLAUDE_TEXT }], stop_reason: 'end_turn' } };
  }
  return {
    events: anthropicStream([
      { type: 'message_start', message },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: CLAUDE_TEXT } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 7 } },
      { type: 'message_stop' },
    ]),
  };
}

/**
 * Runs `claude -p prompt --output-format json` against the gateway with `model` for every model
 * slot, in a fresh HOME, telemetry and updates off, stdin closed, killed after
 * CLAUDE_TIMEOUT_MS. Resolves to { code, signal, stdout, stderr, result (the parsed JSON) }.
 */
async function runClaude(gateway, model, prompt) {
  const home = await mkdtemp(path.join(tmpdir(), 'michi-claude-'));
  try {
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      ANTHROPIC_BASE_URL: gateway.origin,
      ANTHROPIC_API_KEY: gateway.secret,
      ANTHROPIC_MODEL: model,
      ANTHROPIC_SMALL_FAST_MODEL: model,
      ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
    };
    const child = spawn(CLAUDE_BIN, ['-p', prompt, '--output-format', 'json'], {
      env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'], timeout: CLAUDE_TIMEOUT_MS, killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const [code, signal] = await once(child, 'exit');
    let result;
    try { result = JSON.parse(stdout); } catch { /* reported by the caller's assertion */ }
    return { code, signal, stdout, stderr, result };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

function describeRun(run, gateway) {
  return `claude exited ${run.code} (${run.signal})\nstdout: ${run.stdout}\nstderr: ${run.stderr}` +
    `\n--- michi-gateway ---\n${gateway.output()}`;
}

describe('Claude Code (claude -p) through michi-gateway', () => {
  let openai;
  let anthropic;
  let gateway;

  before(async () => {
    openai = await startFakeUpstream(openaiRespond);
    anthropic = await startFakeAnthropic(anthropicRespond);
    gateway = await startGateway({
      providers: {
        fake: { type: 'openai', base_url: openai.baseURL, api_key: 'sk-upstream-test' },
        claude: { type: 'anthropic', base_url: anthropic.baseURL, api_key: ANTHROPIC_KEY },
      },
      models: {
        [OPENAI_MODEL]: { input_per_mtok: 1, output_per_mtok: 2 },
        [CLAUDE_MODEL]: { input_per_mtok: 5, output_per_mtok: 25 },
      },
    });
  }, HOOK_TIMEOUT);

  after(async () => {
    const exit = await gateway?.stop();
    await openai?.close();
    await anthropic?.close();
    if (gateway) {
      assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
    }
  }, HOOK_TIMEOUT);

  test('an OpenAI-type model: the answer is printed; the system turns reach the upstream', TEST_TIMEOUT, async () => {
    const before = openai.requests.length;
    const run = await runClaude(gateway, OPENAI_MODEL, 'say hi');
    assert.equal(run.code, 0, describeRun(run, gateway));
    assert.equal(run.result?.is_error, false, describeRun(run, gateway));
    assert.equal(run.result.result, OPENAI_TEXT);

    const seen = openai.requests.slice(before).filter((r) => r.path === '/v1/chat/completions');
    assert.ok(seen.length >= 1, 'the upstream got the chat request');
    const main = seen.find((r) => Array.isArray(r.body.tools) && r.body.tools.length > 0) ?? seen[0];
    assert.equal(main.body.model, 'gpt-test');
    assert.equal(main.headers.authorization, 'Bearer sk-upstream-test');
    const roles = main.body.messages.map((m) => m.role);
    assert.equal(roles[0], 'system', roles.join(','));
    assert.ok(roles.includes('user'), roles.join(','));
    // Claude Code's own system prompt and its `system` turn inside messages, both as text.
    const systemText = main.body.messages.filter((m) => m.role === 'system')
      .map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content))).join('\n');
    assert.match(systemText, /Claude/);
    assert.ok(roles.filter((r) => r === 'system').length >= 2, `a system turn from inside messages: ${roles}`);
    assert.ok(main.body.tools.every((t) => t.type === 'function' && t.function?.name), 'tools as functions');
  });

  test('an Anthropic-type model: cache_control, thinking, context_management, output_config and anthropic-beta arrive intact', TEST_TIMEOUT, async () => {
    const before = anthropic.requests.length;
    const run = await runClaude(gateway, CLAUDE_MODEL, 'say hi');
    assert.equal(run.code, 0, describeRun(run, gateway));
    assert.equal(run.result?.is_error, false, describeRun(run, gateway));
    assert.equal(run.result.result, CLAUDE_TEXT);
    // The usage Claude Code read is the provider's, relayed as it came.
    assert.equal(run.result.usage?.input_tokens, 40, JSON.stringify(run.result.usage));
    assert.equal(run.result.usage?.output_tokens, 7, JSON.stringify(run.result.usage));

    const seen = anthropic.requests.slice(before).filter((r) => r.path === '/v1/messages');
    assert.ok(seen.length >= 1, 'the upstream got the messages request');
    const main = seen.find((r) => r.body.thinking) ?? seen[0];
    const body = main.body;
    assert.equal(body.model, 'claude-opus-4-5');
    assert.equal(main.headers['x-api-key'], ANTHROPIC_KEY);
    assert.ok(!JSON.stringify(main.headers).includes(gateway.secret), 'client secret leaked upstream');
    assert.match(main.headers['anthropic-version'] ?? '', /^\d{4}-\d{2}-\d{2}$/);
    assert.match(main.headers['anthropic-beta'] ?? '', /claude-code-\d+/);
    assert.match(main.headers['anthropic-beta'], /interleaved-thinking/);

    // The system prompt stays a list of blocks, its cache breakpoints kept.
    assert.ok(Array.isArray(body.system), `system as blocks: ${typeof body.system}`);
    assert.ok(body.system.some((b) => b.cache_control?.type === 'ephemeral'), JSON.stringify(body.system).slice(0, 500));
    assert.equal(body.thinking?.type, 'enabled', JSON.stringify(body.thinking));
    assert.ok(body.thinking.budget_tokens > 1024, JSON.stringify(body.thinking));
    assert.ok(Array.isArray(body.context_management?.edits), JSON.stringify(body.context_management));
    assert.ok(typeof body.output_config?.effort === 'string', JSON.stringify(body.output_config));
    assert.equal(body.stream, true);
    assert.ok(body.tools.some((t) => t.name && t.input_schema), 'tools in Anthropic form');
  });
});
