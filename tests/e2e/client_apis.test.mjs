// End to end: the smaller parts of every client's API through a real michi-gateway, read by
// the clients that use them: the Anthropic SDK's messages passed through to an Anthropic-type
// provider, its countTokens (passed through, or the gateway's own estimate) and an
// Anthropic-shaped 404; the OpenAI SDK's models.retrieve of an id with a slash and base64
// embeddings; Node's http client reading a GET after a HEAD on one kept-alive connection.
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { anthropicStream, startFakeAnthropic, startFakeUpstream, startGateway } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const HOOK_TIMEOUT = { timeout: 30_000 };
const ANTHROPIC_KEY = 'sk-ant-upstream-test';
const CLAUDE = 'claude/claude-x';
const COUNTED = 4242; // what the fake Anthropic upstream counts

const CLAUDE_TEXT = 'Passed through.';
const CLAUDE_USAGE = { input_tokens: 1200, output_tokens: 9, cache_read_input_tokens: 1000, cache_creation_input_tokens: 100 };

function anthropicRespond({ path, body }) {
  if (path === '/v1/messages/count_tokens') return { json: { input_tokens: COUNTED } };
  const message = {
    id: 'msg_pt', type: 'message', role: 'assistant', model: body.model,
    content: [{ type: 'text', text: CLAUDE_TEXT }], stop_reason: 'end_turn', stop_sequence: null,
    usage: CLAUDE_USAGE,
  };
  if (!body.stream) return { json: message };
  return {
    events: anthropicStream([
      { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { ...CLAUDE_USAGE, output_tokens: 1 } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: CLAUDE_TEXT } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: CLAUDE_USAGE.output_tokens } },
      { type: 'message_stop' },
    ]),
  };
}

function openaiRespond() {
  return { status: 500, json: { error: { message: 'the fake OpenAI upstream is not to be called here' } } };
}

/** Asserts that `promise` rejects with an SDK error of class `ErrorClass`; returns it. */
async function rejectsWith(promise, ErrorClass) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${caught?.constructor?.name}: ${caught?.message}`);
  return caught;
}

/** Float32 little-endian values of a base64 string, as OpenAI encodes embeddings. */
function decodeFloats(b64) {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
}

describe('client APIs beyond chat through michi-gateway', () => {
  let anthropic;
  let openaiFake;
  let gateway;
  let claude;
  let openai;

  before(async () => {
    anthropic = await startFakeAnthropic(anthropicRespond);
    openaiFake = await startFakeUpstream(openaiRespond);
    gateway = await startGateway({
      providers: {
        claude: { type: 'anthropic', base_url: anthropic.baseURL, api_key: ANTHROPIC_KEY },
        fake: { type: 'openai', base_url: openaiFake.baseURL, api_key: 'sk-upstream-test' },
      },
      models: {
        [CLAUDE]: { input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3, cache_write_per_mtok: 3.75 },
        'fake/gpt-test': { input_per_mtok: 1, output_per_mtok: 2 },
      },
    });
    claude = new Anthropic({ baseURL: gateway.origin, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
    openai = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
  }, HOOK_TIMEOUT);

  after(async () => {
    const exit = await gateway?.stop();
    await anthropic?.close();
    await openaiFake?.close();
    if (gateway) {
      assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
    }
  }, HOOK_TIMEOUT);

  test('Anthropic SDK messages.create to an Anthropic-type provider: the body goes as sent, only model swapped', TEST_TIMEOUT, async () => {
    const params = {
      model: CLAUDE,
      max_tokens: 64,
      system: [{ type: 'text', text: 'Long cached preamble.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'hi' }],
      top_k: 5,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
      some_future_field: { nested: [1, 2.50, 'x'] },
    };
    const before = anthropic.requests.length;
    const { data: message, response } = await claude.messages.create(params, {
      headers: { 'anthropic-beta': 'context-management-2025-06-27' },
    }).withResponse();
    assert.equal(anthropic.requests.length, before + 1);
    const seen = anthropic.requests.at(-1);
    assert.equal(seen.path, '/v1/messages');
    assert.equal(seen.raw, JSON.stringify({ ...params, model: 'claude-x' }));
    assert.equal(seen.headers['anthropic-beta'], 'context-management-2025-06-27');
    assert.equal(seen.headers['x-api-key'], ANTHROPIC_KEY);

    assert.deepEqual(message.content, [{ type: 'text', text: CLAUDE_TEXT }]);
    assert.deepEqual(message.usage, CLAUDE_USAGE);
    assert.equal(response.headers.get('x-michi-model'), CLAUDE);
    // 1200 uncached input (Anthropic counts cache reads and writes apart) x $3 + 1000 cache
    // reads x $0.30 + 100 cache writes x $3.75
    // + 9 output x $15, per million.
    const cost = (1200 * 3 + 1000 * 0.3 + 100 * 3.75 + 9 * 15) / 1e6;
    assert.ok(Math.abs(Number(response.headers.get('x-michi-cost-usd')) - cost) < 1e-9,
      `x-michi-cost-usd ${response.headers.get('x-michi-cost-usd')}, expected ${cost}`);
  });

  test('Anthropic SDK messages.stream to an Anthropic-type provider: events relayed, usage read', TEST_TIMEOUT, async () => {
    const texts = [];
    const stream = claude.messages.stream({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'stream' }] });
    stream.on('text', (t) => texts.push(t));
    const message = await stream.finalMessage();
    assert.equal(texts.join(''), CLAUDE_TEXT);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.usage.cache_read_input_tokens, CLAUDE_USAGE.cache_read_input_tokens);
    assert.equal(message.usage.output_tokens, CLAUDE_USAGE.output_tokens);
    assert.equal(anthropic.requests.at(-1).body.stream, true);
  });

  test('Anthropic SDK countTokens to an Anthropic-type provider: passed through', TEST_TIMEOUT, async () => {
    const before = anthropic.requests.length;
    const params = {
      model: CLAUDE,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'How many tokens is this?' }],
      tools: [{ name: 'noop', description: 'does nothing', input_schema: { type: 'object', properties: {} } }],
    };
    const counted = await claude.messages.countTokens(params);
    assert.deepEqual(counted, { input_tokens: COUNTED });
    assert.equal(anthropic.requests.length, before + 1);
    const seen = anthropic.requests.at(-1);
    assert.equal(seen.path, '/v1/messages/count_tokens');
    assert.equal(seen.raw, JSON.stringify({ ...params, model: 'claude-x' }));
    assert.equal(seen.headers['x-api-key'], ANTHROPIC_KEY);
  });

  test('Anthropic SDK countTokens to echo and an OpenAI-type provider: the gateway estimates, nothing goes upstream', TEST_TIMEOUT, async () => {
    const short = 'How many tokens is this?';
    const long = short.repeat(40);
    for (const model of ['echo/echo-1', 'fake/gpt-test']) {
      const before = openaiFake.requests.length;
      const few = await claude.messages.countTokens({ model, messages: [{ role: 'user', content: short }] });
      const many = await claude.messages.countTokens({
        model, system: 'Be brief.', messages: [{ role: 'system', content: 'Claude Code sends these.' }, { role: 'user', content: long }],
      });
      assert.deepEqual(Object.keys(few), ['input_tokens'], JSON.stringify(few));
      assert.ok(Number.isInteger(few.input_tokens) && few.input_tokens > 0, JSON.stringify(few));
      assert.ok(many.input_tokens > few.input_tokens * 10, `${JSON.stringify(many)} vs ${JSON.stringify(few)}`);
      assert.equal(openaiFake.requests.length, before, `${model}: nothing upstream`);
    }
  });

  test('an unknown /v1/messages/... path: an Anthropic-shaped 404 the SDK raises as NotFoundError', TEST_TIMEOUT, async () => {
    const err = await rejectsWith(claude.post('/v1/messages/nope', { body: {} }), Anthropic.NotFoundError);
    assert.equal(err.status, 404);
    assert.equal(err.error?.type, 'error', JSON.stringify(err.error));
    assert.equal(err.error?.error?.type, 'not_found_error', JSON.stringify(err.error));
    const wrongMethod = await rejectsWith(claude.get('/v1/messages/count_tokens'), Anthropic.APIError);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.error?.type, 'error', JSON.stringify(wrongMethod.error));
    assert.equal(wrongMethod.error?.error?.type, 'invalid_request_error', JSON.stringify(wrongMethod.error));
  });

  test('OpenAI SDK models.retrieve of an id with a slash', TEST_TIMEOUT, async () => {
    const model = await openai.models.retrieve('echo/echo-1');
    assert.deepEqual({ id: model.id, object: model.object, owned_by: model.owned_by },
      { id: 'echo/echo-1', object: 'model', owned_by: 'echo' });
    const err = await rejectsWith(openai.models.retrieve('nope/none'), OpenAI.NotFoundError);
    assert.equal(err.status, 404);
  });

  test('OpenAI SDK embeddings on echo: base64 decodes to the floats', TEST_TIMEOUT, async () => {
    const input = ['the same words', 'and some others'];
    const floats = await openai.embeddings.create({ model: 'echo/echo-1', input, encoding_format: 'float' });
    // Without encoding_format the SDK asks for base64 and decodes it itself.
    const decoded = await openai.embeddings.create({ model: 'echo/echo-1', input });
    const raw = await openai.embeddings.create({ model: 'echo/echo-1', input, encoding_format: 'base64' });
    assert.equal(floats.data.length, 2);
    for (let i = 0; i < 2; ++i) {
      const want = floats.data[i].embedding;
      assert.ok(Array.isArray(want) && want.length > 0 && want.some((x) => x !== 0), JSON.stringify(want).slice(0, 200));
      const wantF32 = Array.from(new Float32Array(want));
      assert.deepEqual(decoded.data[i].embedding, wantF32);
      assert.equal(typeof raw.data[i].embedding, 'string');
      assert.deepEqual(decodeFloats(raw.data[i].embedding), wantF32);
    }
  });

  test('Node http: a GET after a HEAD on one kept-alive connection parses', TEST_TIMEOUT, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const { hostname, port } = new URL(gateway.origin);
    const call = (method, path) => new Promise((resolve, reject) => {
      const req = http.request({
        agent, hostname, port, method, path, headers: { authorization: `Bearer ${gateway.secret}` },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, reused: req.reusedSocket, socket: req.socket }));
      });
      req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end();
    });
    try {
      const head = await call('HEAD', '/v1/models');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.ok(Number(head.headers['content-length']) > 0, 'HEAD says the GET body length');
      const get = await call('GET', '/v1/models');
      assert.equal(get.status, 200);
      assert.ok(get.reused, 'the GET went on the HEAD connection');
      assert.equal(get.socket, head.socket);
      assert.equal(Number(head.headers['content-length']), Buffer.byteLength(get.body));
      assert.ok(JSON.parse(get.body).data.some((m) => m.id === 'echo/echo-1'), get.body);
      // Claude Code probes HEAD / at start: whatever it gets, no body follows.
      const probe = await call('HEAD', '/');
      assert.equal(probe.body, '');
      const model = await call('GET', '/v1/models/echo%2Fecho-1');
      assert.equal(model.status, 200);
      assert.ok(model.reused);
      assert.equal(JSON.parse(model.body).id, 'echo/echo-1');
    } finally {
      agent.destroy();
    }
  });
});
