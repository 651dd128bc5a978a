// End to end: the official OpenAI SDK's Responses API (responses.create, plain and streamed,
// and a function-tool round trip) through a real michi-gateway, answered by the echo provider
// and by a chat-only fake upstream (the gateway translates).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeUpstream, startGateway } from './helpers.mjs';
import { chatBrain, PLAIN_TEXT, USAGE, WEATHER_ARGS, weatherAnswer } from './support/chat_brain.mjs';

const TEST_TIMEOUT = { timeout: 20_000 };

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

describe('OpenAI SDK Responses API through michi-gateway', () => {
  let fake;
  let gateway;
  let client;

  before(async () => {
    fake = await startFakeUpstream(chatBrain);
    gateway = await startGateway({
      providers: { chatonly: { type: 'openai', base_url: fake.baseURL, api_key: 'sk-up' } },
      models: { 'chatonly/brain': { upstream: 'brain-1', input_per_mtok: 1, output_per_mtok: 2 } },
    });
    client = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0 });
  });

  after(async () => {
    await gateway?.stop();
    await fake?.close();
  });

  test('responses.create, plain, against echo', TEST_TIMEOUT, async () => {
    const r = await client.responses.create({ model: 'echo/echo-1', input: 'ping from the sdk' });
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.match(r.id, /^resp_/);
    assert.equal(r.output_text, 'ping from the sdk');
    assert.ok(r.usage.input_tokens > 0);
  });

  test('responses.create, plain, translated to a chat-only upstream', TEST_TIMEOUT, async () => {
    const before = fake.requests.length;
    const r = await client.responses.create({
      model: 'chatonly/brain',
      instructions: 'Answer briefly.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
      max_output_tokens: 64,
      store: false,
    });
    assert.equal(r.output_text, PLAIN_TEXT);
    assert.equal(r.model, 'chatonly/brain');
    assert.deepEqual(
      [r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens],
      [USAGE.prompt_tokens, USAGE.completion_tokens, USAGE.total_tokens]);
    const seen = fake.requests.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].path, '/v1/chat/completions');
    assert.equal(seen[0].body.model, 'brain-1');
    assert.deepEqual(seen[0].body.messages, [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.equal(seen[0].body.max_completion_tokens, 64);
  });

  test('responses.stream, translated, gives the SDK its events and final response',
    TEST_TIMEOUT, async () => {
      const stream = client.responses.stream({ model: 'chatonly/brain', input: 'hi' });
      const types = [];
      let text = '';
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'response.output_text.delta') text += event.delta;
      }
      const final = await stream.finalResponse();
      assert.equal(text, PLAIN_TEXT);
      assert.equal(final.output_text, PLAIN_TEXT);
      assert.equal(final.status, 'completed');
      assert.equal(final.usage.output_tokens, USAGE.completion_tokens);
      assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
        'response.output_item.added', 'response.content_part.added']);
      assert.equal(types.at(-1), 'response.completed');
      assert.ok(types.includes('response.output_text.done'));
      assert.ok(types.includes('response.output_item.done'));
      const sent = fake.requests.at(-1).body;
      assert.equal(sent.stream, true);
      assert.deepEqual(sent.stream_options, { include_usage: true });
    });

  test('responses.create with stream: true against echo', TEST_TIMEOUT, async () => {
    const stream = await client.responses.create({
      model: 'echo/echo-1', input: 'streamed echo words', stream: true,
    });
    let completed;
    let text = '';
    let last = -1;
    for await (const event of stream) {
      assert.equal(event.sequence_number, last + 1);
      last = event.sequence_number;
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    assert.equal(text, 'streamed echo words');
    assert.equal(completed.output[0].content[0].text, 'streamed echo words');
    assert.ok(completed.usage.output_tokens > 0);
  });

  for (const streamed of [false, true]) {
    test(`a function-tool round trip, ${streamed ? 'streamed' : 'plain'}`, TEST_TIMEOUT, async () => {
      const before = fake.requests.length;
      const input = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const ask = async (items) => {
        const params = { model: 'chatonly/brain', input: items, tools: [weatherTool] };
        if (!streamed) return client.responses.create(params);
        return client.responses.stream(params).finalResponse();
      };
      const first = await ask(input);
      const calls = first.output.filter((item) => item.type === 'function_call');
      assert.equal(calls.length, 1, JSON.stringify(first.output));
      assert.equal(calls[0].name, 'get_weather');
      assert.deepEqual(JSON.parse(calls[0].arguments), WEATHER_ARGS);
      assert.equal(calls[0].status, 'completed');

      const second = await ask([
        ...input,
        ...first.output,
        { type: 'function_call_output', call_id: calls[0].call_id, output: 'sunny, 24C' },
      ]);
      assert.equal(second.output_text, weatherAnswer('sunny, 24C'));

      // What the chat upstream was sent the second time: the call and its result.
      const sent = fake.requests.slice(before).at(-1).body;
      assert.equal(fake.requests.length - before, 2);
      assert.deepEqual(sent.tools, [{
        type: 'function',
        function: {
          name: 'get_weather', description: weatherTool.description,
          parameters: weatherTool.parameters, strict: true,
        },
      }]);
      const [user, assistant, tool] = sent.messages;
      assert.equal(user.content, input[0].content);
      assert.equal(assistant.role, 'assistant');
      assert.equal(assistant.tool_calls[0].id, calls[0].call_id);
      assert.equal(assistant.tool_calls[0].function.name, 'get_weather');
      assert.deepEqual(tool, { role: 'tool', tool_call_id: calls[0].call_id, content: 'sunny, 24C' });
    });
  }

  test('previous_response_id to a chat-only model is refused by name', TEST_TIMEOUT, async () => {
    await assert.rejects(
      client.responses.create({ model: 'chatonly/brain', input: 'hi', previous_response_id: 'resp_1' }),
      (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, String(err));
        assert.equal(err.code, 'unsupported_parameter');
        assert.equal(err.param, 'previous_response_id');
        return true;
      });
  });
});
