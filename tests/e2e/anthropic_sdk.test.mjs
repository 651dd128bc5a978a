// End to end: the official Anthropic SDK talks to a real michi-gateway's /v1/messages, which
// serves the built-in echo provider and an OpenAI-type provider (a fake upstream on this
// machine), translating Anthropic requests, messages, stream events and tool calls both ways.
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeUpstream, startGateway } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const HOOK_TIMEOUT = { timeout: 30_000 };
const UPSTREAM_KEY = 'sk-upstream-test';
const MODEL = 'fake/gpt-test';

const FAKE_TEXT_PIECES = ['Hello', ' from', ' the fake', ' upstream.'];
const FAKE_TEXT = FAKE_TEXT_PIECES.join('');
const FAKE_USAGE = { prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 };
const SYSTEM_PROMPT = 'Be brief.';
const TOOL_INPUT = { city: 'Paris', unit: 'celsius' };
const ARGUMENT_PIECES = ['{"city":', ' "Paris", "u', 'nit": "celsius"}'];
const FOLLOWUP_TEXT = 'It is 21 degrees in Paris.';
const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather in a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city'],
  },
};

// ---- the fake OpenAI-type upstream ----

function completion(message, finishReason) {
  return {
    id: 'chatcmpl-fake-1', object: 'chat.completion', created: 1_700_000_000, model: 'gpt-test',
    choices: [{ index: 0, message: { role: 'assistant', refusal: null, ...message }, logprobs: null, finish_reason: finishReason }],
    usage: FAKE_USAGE,
  };
}

function chunks(deltas, finishReason, includeUsage) {
  const chunk = (choices, extra = {}) => ({
    id: 'chatcmpl-fake-2', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-test', choices, ...extra,
  });
  const out = deltas.map((delta) => chunk([{ index: 0, delta, finish_reason: null }]));
  out.push(chunk([{ index: 0, delta: {}, finish_reason: finishReason }]));
  if (includeUsage) out.push(chunk([], { usage: FAKE_USAGE }));
  return out;
}

function fakeRespond({ body }) {
  const last = body.messages.at(-1);
  const includeUsage = body.stream_options?.include_usage === true;
  if (last.role === 'tool') {
    return body.stream
      ? { sse: chunks([{ role: 'assistant', content: FOLLOWUP_TEXT }], 'stop', includeUsage) }
      : { json: completion({ content: FOLLOWUP_TEXT }, 'stop') };
  }
  if (body.tools) {
    const call = { id: 'call_fake_1', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(TOOL_INPUT) } };
    if (!body.stream) return { json: completion({ content: null, tool_calls: [call] }, 'tool_calls') };
    return {
      sse: chunks([
        { role: 'assistant', content: null, tool_calls: [{ index: 0, ...call, function: { name: 'get_weather', arguments: '' } }] },
        ...ARGUMENT_PIECES.map((args) => ({ tool_calls: [{ index: 0, function: { arguments: args } }] })),
      ], 'tool_calls', includeUsage),
    };
  }
  return body.stream
    ? { sse: chunks([{ role: 'assistant', content: '' }, ...FAKE_TEXT_PIECES.map((content) => ({ content }))], 'stop', includeUsage) }
    : { json: completion({ content: FAKE_TEXT }, 'stop') };
}

/** Asserts that `promise` rejects with an Anthropic SDK error of class `ErrorClass`; returns it. */
async function rejectsWith(promise, ErrorClass) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${caught?.constructor?.name}: ${caught?.message}`);
  return caught;
}

describe('Anthropic SDK against michi-gateway /v1/messages', () => {
  let fake;
  let gateway;
  let client;

  before(async () => {
    fake = await startFakeUpstream(fakeRespond);
    gateway = await startGateway({
      providers: { fake: { type: 'openai', base_url: fake.baseURL, api_key: UPSTREAM_KEY } },
      models: { [MODEL]: { input_per_mtok: 1, output_per_mtok: 2 } },
    });
    client = new Anthropic({ baseURL: gateway.origin, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
  }, HOOK_TIMEOUT);

  after(async () => {
    const exit = await gateway?.stop();
    await fake?.close();
    if (gateway) {
      assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
    }
  }, HOOK_TIMEOUT);

  /** The one upstream request `fn` makes; fn's result is returned beside it. */
  async function withUpstreamRequest(fn) {
    const before = fake.requests.length;
    const result = await fn();
    assert.equal(fake.requests.length, before + 1, 'exactly one upstream request');
    const seen = fake.requests.at(-1);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/v1/chat/completions');
    assert.equal(seen.body.model, 'gpt-test');
    assert.equal(seen.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.ok(!JSON.stringify(seen.headers).includes(gateway.secret), 'client secret leaked upstream');
    return [result, seen];
  }

  test('messages.create to an openai-type upstream: a text block, end_turn, usage', TEST_TIMEOUT, async () => {
    const [message, seen] = await withUpstreamRequest(() => client.messages.create({
      model: MODEL, max_tokens: 256, system: SYSTEM_PROMPT, messages: [{ role: 'user', content: 'hi upstream' }],
    }));

    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.match(message.id, /^msg_/);
    assert.deepEqual(message.content, [{ type: 'text', text: FAKE_TEXT }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.usage.input_tokens, FAKE_USAGE.prompt_tokens);
    assert.equal(message.usage.output_tokens, FAKE_USAGE.completion_tokens);

    assert.equal(seen.body.max_tokens, 256);
    assert.deepEqual(seen.body.messages, [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: 'hi upstream' },
    ]);
    assert.ok(!seen.body.stream, 'not a stream upstream');
  });

  test('messages.stream: text deltas join to the upstream text; finalMessage has stop_reason and usage', TEST_TIMEOUT, async () => {
    const texts = [];
    const [message, seen] = await withUpstreamRequest(async () => {
      const stream = client.messages.stream({
        model: MODEL, max_tokens: 128, messages: [{ role: 'user', content: 'stream please' }],
      });
      stream.on('text', (delta) => texts.push(delta));
      return stream.finalMessage();
    });

    assert.ok(texts.length >= FAKE_TEXT_PIECES.length, `one text delta per piece, got ${JSON.stringify(texts)}`);
    assert.equal(texts.join(''), FAKE_TEXT);
    assert.deepEqual(message.content, [{ type: 'text', text: FAKE_TEXT }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.usage.output_tokens, FAKE_USAGE.completion_tokens);
    assert.equal(message.usage.input_tokens, FAKE_USAGE.prompt_tokens);

    assert.equal(seen.body.stream, true);
    assert.equal(seen.body.max_tokens, 128);
  });

  test('messages.create({ stream: true }): Anthropic events in order, text_deltas join to the text', TEST_TIMEOUT, async () => {
    const [events] = await withUpstreamRequest(async () => {
      const stream = await client.messages.create({
        model: MODEL, max_tokens: 128, messages: [{ role: 'user', content: 'raw events please' }], stream: true,
      });
      const out = [];
      for await (const event of stream) out.push(event);
      return out;
    });

    const types = events.map((e) => e.type);
    assert.equal(types[0], 'message_start', types.join(' '));
    assert.equal(types.at(-1), 'message_stop', types.join(' '));
    assert.equal(types.at(-2), 'message_delta', types.join(' '));
    assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'), types.join(' '));
    const text = events
      .filter((e) => e.type === 'content_block_delta' && e.delta.type === 'text_delta')
      .map((e) => e.delta.text).join('');
    assert.equal(text, FAKE_TEXT);
    const delta = events.at(-2);
    assert.equal(delta.delta.stop_reason, 'end_turn');
    assert.equal(delta.usage.output_tokens, FAKE_USAGE.completion_tokens);
  });

  test('a wrong key raises AuthenticationError (401, Anthropic-shaped)', TEST_TIMEOUT, async () => {
    const intruder = new Anthropic({ baseURL: gateway.origin, apiKey: 'mk-dev-not-a-real-key', maxRetries: 0, timeout: 10_000 });
    const before = fake.requests.length;
    const err = await rejectsWith(
      intruder.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'let me in' }] }),
      Anthropic.AuthenticationError,
    );
    assert.equal(err.status, 401);
    assert.equal(err.error?.type, 'error', JSON.stringify(err.error));
    assert.equal(err.error?.error?.type, 'authentication_error', JSON.stringify(err.error));
    assert.equal(fake.requests.length, before, 'nothing reached the upstream');
  });

  test('an unknown model raises NotFoundError', TEST_TIMEOUT, async () => {
    const err = await rejectsWith(
      client.messages.create({ model: 'nope/no-such-model', max_tokens: 16, messages: [{ role: 'user', content: 'anyone?' }] }),
      Anthropic.NotFoundError,
    );
    assert.equal(err.status, 404);
    assert.equal(err.error?.error?.type, 'not_found_error', JSON.stringify(err.error));
  });

  test('tool call: upstream tool_calls become a tool_use block with parsed input, stop_reason tool_use', TEST_TIMEOUT, async () => {
    const [message, seen] = await withUpstreamRequest(() => client.messages.create({
      model: MODEL, max_tokens: 200, tools: [WEATHER_TOOL],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    }));

    assert.equal(message.stop_reason, 'tool_use');
    const toolUses = message.content.filter((b) => b.type === 'tool_use');
    assert.equal(toolUses.length, 1, JSON.stringify(message.content));
    assert.equal(toolUses[0].id, 'call_fake_1');
    assert.equal(toolUses[0].name, 'get_weather');
    assert.deepEqual(toolUses[0].input, TOOL_INPUT);

    assert.deepEqual(seen.body.tools, [{
      type: 'function',
      function: { name: 'get_weather', description: WEATHER_TOOL.description, parameters: WEATHER_TOOL.input_schema },
    }]);
  });

  test('streamed tool call: the final message has the tool_use block with input assembled', TEST_TIMEOUT, async () => {
    const [message, seen] = await withUpstreamRequest(() => client.messages.stream({
      model: MODEL, max_tokens: 200, tools: [WEATHER_TOOL],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    }).finalMessage());

    assert.equal(message.stop_reason, 'tool_use');
    const toolUses = message.content.filter((b) => b.type === 'tool_use');
    assert.equal(toolUses.length, 1, JSON.stringify(message.content));
    assert.equal(toolUses[0].id, 'call_fake_1');
    assert.equal(toolUses[0].name, 'get_weather');
    assert.deepEqual(toolUses[0].input, TOOL_INPUT);
    assert.equal(seen.body.stream, true);
  });

  test('follow-up turn: a tool_result block reaches the upstream as a tool message', TEST_TIMEOUT, async () => {
    const [message, seen] = await withUpstreamRequest(() => client.messages.create({
      model: MODEL, max_tokens: 200, tools: [WEATHER_TOOL],
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_fake_1', name: 'get_weather', input: TOOL_INPUT }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_fake_1', content: '{"temp_c": 21}' }] },
      ],
    }));

    assert.deepEqual(message.content, [{ type: 'text', text: FOLLOWUP_TEXT }]);
    assert.equal(message.stop_reason, 'end_turn');

    const [userTurn, assistantTurn, toolTurn] = seen.body.messages;
    assert.equal(seen.body.messages.length, 3, JSON.stringify(seen.body.messages));
    assert.deepEqual(userTurn, { role: 'user', content: 'What is the weather in Paris?' });
    assert.equal(assistantTurn.role, 'assistant');
    assert.equal(assistantTurn.tool_calls?.[0]?.id, 'call_fake_1');
    assert.equal(assistantTurn.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(assistantTurn.tool_calls[0].function.arguments), TOOL_INPUT);
    assert.deepEqual(toolTurn, { role: 'tool', tool_call_id: 'call_fake_1', content: '{"temp_c": 21}' });
  });

  test('echo/echo-1: messages.create echoes the last user message with usage', TEST_TIMEOUT, async () => {
    const text = 'hello michi, echo this back in Anthropic format';
    const message = await client.messages.create({
      model: 'echo/echo-1', max_tokens: 256, messages: [{ role: 'user', content: text }],
    });
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.deepEqual(message.content, [{ type: 'text', text }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0, JSON.stringify(message.usage));
  });

  test('echo/echo-1: messages.stream deltas join to the echoed text', TEST_TIMEOUT, async () => {
    const text = 'stream these echoed words one by one';
    const texts = [];
    const stream = client.messages.stream({ model: 'echo/echo-1', max_tokens: 256, messages: [{ role: 'user', content: text }] });
    stream.on('text', (delta) => texts.push(delta));
    const message = await stream.finalMessage();
    assert.ok(texts.length > 1, `expected several deltas, got ${JSON.stringify(texts)}`);
    assert.equal(texts.join(''), text);
    assert.deepEqual(message.content, [{ type: 'text', text }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.ok(message.usage.output_tokens > 0, JSON.stringify(message.usage));
  });
});
