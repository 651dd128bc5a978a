// End to end: the official OpenAI SDK talks to a real michi-gateway, which translates its chat
// requests for an Anthropic-type and a Gemini-type upstream (fakes on this machine) and their
// answers, streams and tool calls back into OpenAI's shapes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  anthropicStream, geminiStream, startFakeAnthropic, startFakeGemini, startGateway,
} from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const HOOK_TIMEOUT = { timeout: 30_000 };
const ANTHROPIC_KEY = 'sk-ant-upstream-test';
const GEMINI_KEY = 'gemini-upstream-test';
const CLAUDE_MODEL = 'claude-x';
const GEMINI_MODEL = 'gemini-2.5-flash';

const SYSTEM_PROMPT = 'You are a terse weather assistant.';
const TEXT_PIECES = ['Sunny', ' skies', ' over', ' Paris.'];
const TEXT = TEXT_PIECES.join('');
const PREAMBLE = 'Let me check.';
const FOLLOWUP_TEXT = 'It is 21 degrees in Paris.';
const TOOL_INPUT = { city: 'Paris', unit: 'celsius' };
const TOOL_RESULT = { temp_c: 21 };
const WEATHER_PARAMS = {
  type: 'object',
  properties: {
    city: { type: 'string', description: 'City name' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
  },
  required: ['city'],
};
const WEATHER_TOOL = {
  type: 'function',
  function: { name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER_PARAMS },
};
// The input JSON of a streamed tool call, cut where no JSON token boundary is.
const INPUT_JSON_PIECES = ['', '{"city": "Pa', 'ris", "un', 'it": "celsius"}'];

// ---- the fake Anthropic upstream ----

const ANTHROPIC_USAGE = { input_tokens: 12, output_tokens: 5 };

function anthropicMessage(content, stopReason) {
  return {
    id: 'msg_fake_01', type: 'message', role: 'assistant', model: CLAUDE_MODEL,
    content, stop_reason: stopReason, stop_sequence: null, usage: ANTHROPIC_USAGE,
  };
}

/** The message as Anthropic streams it: text blocks in pieces, tool inputs as JSON pieces. */
function anthropicEventsFor(blocks, stopReason) {
  const events = [
    { type: 'message_start', message: { ...anthropicMessage([], null), usage: { input_tokens: 12, output_tokens: 1 } } },
  ];
  blocks.forEach((block, index) => {
    if (block.type === 'text') {
      events.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      if (index === 0) events.push({ type: 'ping' });
      for (const text of block.pieces) events.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
    } else {
      events.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } });
      for (const partial_json of block.pieces) {
        events.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } });
      }
    }
    events.push({ type: 'content_block_stop', index });
  });
  events.push({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: ANTHROPIC_USAGE.output_tokens } });
  events.push({ type: 'message_stop' });
  return anthropicStream(events);
}

function anthropicRespond({ body }) {
  const last = body.messages.at(-1);
  const blocks = Array.isArray(last.content) ? last.content : [];
  if (blocks.some((b) => b.type === 'tool_result')) {
    return body.stream
      ? { events: anthropicEventsFor([{ type: 'text', pieces: [FOLLOWUP_TEXT] }], 'end_turn') }
      : { json: anthropicMessage([{ type: 'text', text: FOLLOWUP_TEXT }], 'end_turn') };
  }
  if (body.tools) {
    return body.stream
      ? {
        events: anthropicEventsFor([
          { type: 'text', pieces: [PREAMBLE] },
          { type: 'tool_use', id: 'toolu_fake_01', name: 'get_weather', pieces: INPUT_JSON_PIECES },
        ], 'tool_use'),
      }
      : {
        json: anthropicMessage([
          { type: 'text', text: PREAMBLE },
          { type: 'tool_use', id: 'toolu_fake_01', name: 'get_weather', input: TOOL_INPUT },
        ], 'tool_use'),
      };
  }
  return body.stream
    ? { events: anthropicEventsFor([{ type: 'text', pieces: TEXT_PIECES }], 'end_turn') }
    : { json: anthropicMessage([{ type: 'text', text: TEXT }], 'end_turn') };
}

// ---- the fake Gemini upstream ----

const GEMINI_USAGE = { promptTokenCount: 9, candidatesTokenCount: 6, totalTokenCount: 15 };

function geminiResponse(parts, finishReason, withUsage = true) {
  const candidate = { content: { role: 'model', parts }, index: 0 };
  if (finishReason) candidate.finishReason = finishReason;
  return { candidates: [candidate], ...(withUsage ? { usageMetadata: GEMINI_USAGE } : {}), modelVersion: GEMINI_MODEL };
}

/** One event per part; the last one carries finishReason and usageMetadata. */
function geminiEventsFor(parts) {
  return geminiStream(parts.map((part, i) =>
    i === parts.length - 1 ? geminiResponse([part], 'STOP') : geminiResponse([part], undefined, false)));
}

function geminiRespond({ path, body }) {
  const stream = path.includes(':streamGenerateContent');
  const lastParts = body.contents.at(-1).parts;
  let parts;
  if (lastParts.some((p) => p.functionResponse)) {
    parts = [{ text: FOLLOWUP_TEXT }];
  } else if (body.tools) {
    parts = [{ functionCall: { name: 'get_weather', args: TOOL_INPUT } }];
  } else {
    parts = stream ? TEXT_PIECES.map((text) => ({ text })) : [{ text: TEXT }];
  }
  return stream ? { events: geminiEventsFor(parts) } : { json: geminiResponse(parts, 'STOP') };
}

// ---- the OpenAI side ----

const ask = (content) => [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content }];

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const joinDeltas = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
const finishReason = (chunks) => chunks.map((c) => c.choices[0]?.finish_reason).find(Boolean);

/** Tool calls assembled from stream deltas, as OpenAI clients do: by index, arguments joined. */
function assembleToolCalls(chunks) {
  const calls = [];
  for (const chunk of chunks) {
    for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
      const call = (calls[d.index] ??= { id: undefined, type: undefined, function: { name: '', arguments: '' } });
      if (d.id) call.id = d.id;
      if (d.type) call.type = d.type;
      if (d.function?.name) call.function.name += d.function.name;
      if (d.function?.arguments) call.function.arguments += d.function.arguments;
    }
  }
  return calls;
}

/** The conversation after the assistant called get_weather as `callId`: plus the tool result. */
function followUp(callId) {
  return [
    ...ask('What is the weather in Paris?'),
    {
      role: 'assistant', content: null,
      tool_calls: [{ id: callId, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(TOOL_INPUT) } }],
    },
    { role: 'tool', tool_call_id: callId, content: JSON.stringify(TOOL_RESULT) },
  ];
}

describe('OpenAI SDK through translated providers', () => {
  let anthropic;
  let gemini;
  let gateway;
  let client;

  before(async () => {
    anthropic = await startFakeAnthropic(anthropicRespond);
    gemini = await startFakeGemini(geminiRespond);
    gateway = await startGateway({
      providers: {
        claude: { type: 'anthropic', base_url: anthropic.baseURL, api_key: ANTHROPIC_KEY },
        gem: { type: 'gemini', base_url: gemini.baseURL, api_key: GEMINI_KEY },
      },
      models: {
        [`claude/${CLAUDE_MODEL}`]: { input_per_mtok: 3, output_per_mtok: 15 },
        [`gem/${GEMINI_MODEL}`]: { input_per_mtok: 0.3, output_per_mtok: 2.5 },
      },
    });
    client = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
  }, HOOK_TIMEOUT);

  after(async () => {
    const exit = await gateway?.stop();
    await anthropic?.close();
    await gemini?.close();
    if (gateway) {
      assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
    }
  }, HOOK_TIMEOUT);

  /** Sends `params` and returns [SDK result, the one request the fake upstream saw]. */
  async function roundTrip(fake, params) {
    const before = fake.requests.length;
    let result = await client.chat.completions.create(params);
    if (params.stream) result = await collect(result);
    assert.equal(fake.requests.length, before + 1, 'exactly one upstream request');
    return [result, fake.requests.at(-1)];
  }

  describe('anthropic-type upstream', () => {
    const model = `claude/${CLAUDE_MODEL}`;

    function assertAnthropicRequest(seen, { stream, maxTokens }) {
      assert.equal(seen.method, 'POST');
      assert.equal(seen.path, '/v1/messages');
      assert.equal(seen.headers['x-api-key'], ANTHROPIC_KEY);
      assert.ok(seen.headers['anthropic-version'], 'anthropic-version header');
      assert.ok(!JSON.stringify(seen.headers).includes(gateway.secret), 'client secret leaked upstream');
      assert.equal(seen.body.model, CLAUDE_MODEL);
      assert.equal(seen.body.system, SYSTEM_PROMPT);
      assert.ok(seen.body.messages.every((m) => m.role !== 'system'), 'no system turn in messages');
      if (maxTokens) assert.equal(seen.body.max_tokens, maxTokens);
      else assert.ok(Number.isInteger(seen.body.max_tokens) && seen.body.max_tokens > 0, `max_tokens: ${seen.body.max_tokens}`);
      assert.equal(seen.body.stream === true, stream);
    }

    test('non-stream text: content, finish_reason stop, usage; upstream got system and max_tokens', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(anthropic, { model, messages: ask('Weather in Paris?'), max_tokens: 321 });

      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.choices[0].message.role, 'assistant');
      assert.equal(completion.choices[0].message.content, TEXT);
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.equal(completion.usage.prompt_tokens, 12);
      assert.equal(completion.usage.completion_tokens, 5);
      assert.equal(completion.usage.total_tokens, 17);

      assertAnthropicRequest(seen, { stream: false, maxTokens: 321 });
      assert.deepEqual(seen.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }]);
    });

    test('a request without max_tokens still sends Anthropic a max_tokens', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(anthropic, { model, messages: ask('No limit given') });
      assert.equal(completion.choices[0].message.content, TEXT);
      assertAnthropicRequest(seen, { stream: false });
    });

    test('stream: text deltas join to the text; finish_reason stop; include_usage ends with usage', TEST_TIMEOUT, async () => {
      const [chunks, seen] = await roundTrip(anthropic, {
        model, messages: ask('Stream the weather'), max_tokens: 64, stream: true, stream_options: { include_usage: true },
      });

      assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
      assert.equal(joinDeltas(chunks), TEXT);
      assert.ok(chunks.filter((c) => c.choices[0]?.delta?.content).length >= TEXT_PIECES.length, 'one delta per piece');
      assert.equal(finishReason(chunks), 'stop');
      const usage = chunks.at(-1).usage;
      assert.ok(usage, `last chunk has no usage: ${JSON.stringify(chunks.at(-1))}`);
      assert.equal(usage.prompt_tokens, 12);
      assert.equal(usage.completion_tokens, 5);

      assertAnthropicRequest(seen, { stream: true, maxTokens: 64 });
    });

    test('tool call: tool_use becomes message.tool_calls, finish_reason tool_calls; tools sent with input_schema', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(anthropic, {
        model, messages: ask('What is the weather in Paris?'), tools: [WEATHER_TOOL], max_tokens: 200,
      });

      const choice = completion.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.content, PREAMBLE);
      assert.equal(choice.message.tool_calls?.length, 1, JSON.stringify(choice.message));
      const [call] = choice.message.tool_calls;
      assert.equal(call.id, 'toolu_fake_01');
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), TOOL_INPUT);

      assertAnthropicRequest(seen, { stream: false, maxTokens: 200 });
      assert.deepEqual(seen.body.tools, [
        { name: 'get_weather', description: 'Current weather in a city', input_schema: WEATHER_PARAMS },
      ]);
    });

    test('streamed tool call: tool_calls deltas whose arguments join from input_json_delta pieces', TEST_TIMEOUT, async () => {
      const [chunks, seen] = await roundTrip(anthropic, {
        model, messages: ask('What is the weather in Paris?'), tools: [WEATHER_TOOL], max_tokens: 200, stream: true,
      });

      assert.equal(joinDeltas(chunks), PREAMBLE);
      assert.equal(finishReason(chunks), 'tool_calls');
      const calls = assembleToolCalls(chunks);
      assert.equal(calls.length, 1, JSON.stringify(calls));
      assert.equal(calls[0].id, 'toolu_fake_01');
      assert.equal(calls[0].type, 'function');
      assert.equal(calls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(calls[0].function.arguments), TOOL_INPUT);
      const argDeltas = chunks.filter((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments);
      assert.ok(argDeltas.length > 1, `arguments streamed in pieces, got ${argDeltas.length} delta(s)`);
      assert.ok(chunks.every((c) => !c.usage), 'no usage chunk unless stream_options.include_usage');

      assertAnthropicRequest(seen, { stream: true, maxTokens: 200 });
      assert.equal(seen.body.tools[0].name, 'get_weather');
      assert.deepEqual(seen.body.tools[0].input_schema, WEATHER_PARAMS);
    });

    test('follow-up turn: the tool message reaches Anthropic as a tool_result block', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(anthropic, {
        model, messages: followUp('toolu_fake_01'), tools: [WEATHER_TOOL], max_tokens: 200,
      });

      assert.equal(completion.choices[0].message.content, FOLLOWUP_TEXT);
      assert.equal(completion.choices[0].finish_reason, 'stop');

      assertAnthropicRequest(seen, { stream: false, maxTokens: 200 });
      assert.deepEqual(seen.body.messages, [
        { role: 'user', content: [{ type: 'text', text: 'What is the weather in Paris?' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_fake_01', name: 'get_weather', input: TOOL_INPUT }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_fake_01', content: JSON.stringify(TOOL_RESULT) }] },
      ]);
    });
  });

  describe('gemini-type upstream', () => {
    const model = `gem/${GEMINI_MODEL}`;
    const generatePath = `/v1beta/models/${GEMINI_MODEL}:generateContent`;
    const streamPath = `/v1beta/models/${GEMINI_MODEL}:streamGenerateContent?alt=sse`;

    function assertGeminiRequest(seen, { stream, maxTokens }) {
      assert.equal(seen.method, 'POST');
      assert.equal(seen.path, stream ? streamPath : generatePath);
      assert.equal(seen.headers['x-goog-api-key'], GEMINI_KEY);
      assert.ok(!JSON.stringify(seen.headers).includes(gateway.secret), 'client secret leaked upstream');
      assert.deepEqual(seen.body.systemInstruction, { parts: [{ text: SYSTEM_PROMPT }] });
      assert.ok(seen.body.contents.every((c) => c.role === 'user' || c.role === 'model'), JSON.stringify(seen.body.contents));
      if (maxTokens) assert.equal(seen.body.generationConfig?.maxOutputTokens, maxTokens);
    }

    test('non-stream text: content, finish_reason stop, usage from usageMetadata', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(gemini, { model, messages: ask('Weather in Paris?'), max_tokens: 321 });

      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.choices[0].message.role, 'assistant');
      assert.equal(completion.choices[0].message.content, TEXT);
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.equal(completion.usage.prompt_tokens, 9);
      assert.equal(completion.usage.completion_tokens, 6);
      assert.equal(completion.usage.total_tokens, 15);

      assertGeminiRequest(seen, { stream: false, maxTokens: 321 });
      assert.deepEqual(seen.body.contents, [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }]);
    });

    test('stream: text deltas join to the text; finish_reason stop; include_usage ends with usage', TEST_TIMEOUT, async () => {
      const [chunks, seen] = await roundTrip(gemini, {
        model, messages: ask('Stream the weather'), max_tokens: 64, stream: true, stream_options: { include_usage: true },
      });

      assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
      assert.equal(joinDeltas(chunks), TEXT);
      assert.ok(chunks.filter((c) => c.choices[0]?.delta?.content).length >= TEXT_PIECES.length, 'one delta per piece');
      assert.equal(finishReason(chunks), 'stop');
      const usage = chunks.at(-1).usage;
      assert.ok(usage, `last chunk has no usage: ${JSON.stringify(chunks.at(-1))}`);
      assert.equal(usage.prompt_tokens, 9);
      assert.equal(usage.completion_tokens, 6);

      assertGeminiRequest(seen, { stream: true, maxTokens: 64 });
    });

    test('tool call: functionCall becomes message.tool_calls, finish_reason tool_calls; functionDeclarations sent', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(gemini, {
        model, messages: ask('What is the weather in Paris?'), tools: [WEATHER_TOOL], max_tokens: 200,
      });

      const choice = completion.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.tool_calls?.length, 1, JSON.stringify(choice.message));
      const [call] = choice.message.tool_calls;
      assert.ok(typeof call.id === 'string' && call.id.length > 0, `tool call id: ${call.id}`);
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), TOOL_INPUT);

      assertGeminiRequest(seen, { stream: false, maxTokens: 200 });
      assert.deepEqual(seen.body.tools, [{
        functionDeclarations: [{ name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER_PARAMS }],
      }]);
    });

    test('streamed tool call: a tool_calls delta with id, name and the JSON arguments', TEST_TIMEOUT, async () => {
      const [chunks, seen] = await roundTrip(gemini, {
        model, messages: ask('What is the weather in Paris?'), tools: [WEATHER_TOOL], max_tokens: 200, stream: true,
      });

      assert.equal(finishReason(chunks), 'tool_calls');
      const calls = assembleToolCalls(chunks);
      assert.equal(calls.length, 1, JSON.stringify(calls));
      assert.ok(typeof calls[0].id === 'string' && calls[0].id.length > 0, `tool call id: ${calls[0].id}`);
      assert.equal(calls[0].type, 'function');
      assert.equal(calls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(calls[0].function.arguments), TOOL_INPUT);
      assert.ok(chunks.every((c) => !c.usage), 'no usage chunk unless stream_options.include_usage');

      assertGeminiRequest(seen, { stream: true, maxTokens: 200 });
      assert.equal(seen.body.tools[0].functionDeclarations[0].name, 'get_weather');
    });

    test('follow-up turn: the tool message reaches Gemini as a functionResponse', TEST_TIMEOUT, async () => {
      const [completion, seen] = await roundTrip(gemini, {
        model, messages: followUp('call_0'), tools: [WEATHER_TOOL], max_tokens: 200,
      });

      assert.equal(completion.choices[0].message.content, FOLLOWUP_TEXT);
      assert.equal(completion.choices[0].finish_reason, 'stop');

      assertGeminiRequest(seen, { stream: false, maxTokens: 200 });
      const { contents } = seen.body;
      assert.equal(contents.length, 3, JSON.stringify(contents));
      assert.deepEqual(contents[0], { role: 'user', parts: [{ text: 'What is the weather in Paris?' }] });
      assert.equal(contents[1].role, 'model');
      assert.deepEqual(contents[1].parts.map((p) => p.functionCall), [{ name: 'get_weather', args: TOOL_INPUT }]);
      assert.deepEqual(contents[2], {
        role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: TOOL_RESULT } }],
      });
    });
  });
});
