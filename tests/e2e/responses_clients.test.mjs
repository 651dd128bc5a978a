// End to end: frameworks whose default OpenAI model speaks the Responses API — the Vercel AI
// SDK's `openai('model')` and the OpenAI Agents SDK's default Runner — through a real
// michi-gateway to a chat-only fake upstream (translated) and to echo.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { z } from 'zod';
import { startFakeUpstream, startGateway } from './helpers.mjs';
import { chatBrain, PLAIN_TEXT, WEATHER_ARGS, weatherAnswer } from './support/chat_brain.mjs';

const TEST_TIMEOUT = { timeout: 30_000 };

describe('Responses API frameworks through michi-gateway', () => {
  let fake;
  let gateway;

  before(async () => {
    fake = await startFakeUpstream(chatBrain);
    gateway = await startGateway({
      providers: { chatonly: { type: 'openai', base_url: fake.baseURL, api_key: 'sk-up' } },
      models: { 'chatonly/brain': { upstream: 'brain-1', input_per_mtok: 1, output_per_mtok: 2 } },
    });
  });

  after(async () => {
    await gateway?.stop();
    await fake?.close();
  });

  const sentSince = (n) => fake.requests.slice(n);

  describe('Vercel AI SDK, default provider openai(model)', () => {
    let openai;
    before(() => {
      openai = createOpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret });
    });

    test('generateText against echo and a chat-only upstream', TEST_TIMEOUT, async () => {
      const echoed = await generateText({
        model: openai('echo/echo-1'), prompt: 'echo through the ai sdk', maxRetries: 0,
      });
      assert.equal(echoed.text, 'echo through the ai sdk');

      const n = fake.requests.length;
      const r = await generateText({
        model: openai('chatonly/brain'), system: 'Be kind.', prompt: 'hi', maxRetries: 0,
      });
      assert.equal(r.text, PLAIN_TEXT);
      assert.match(r.response.id, /^resp_/); // a Responses API answer
      assert.equal(r.finishReason, 'stop');
      assert.equal(r.usage.outputTokens, 6);
      const [sent] = sentSince(n);
      assert.equal(sent.path, '/v1/chat/completions');
      assert.deepEqual(sent.body.messages.map((m) => m.role), ['system', 'user']);
    });

    test('streamText with a tool: call, result, answer', TEST_TIMEOUT, async () => {
      const n = fake.requests.length;
      const calls = [];
      const result = streamText({
        model: openai('chatonly/brain'),
        prompt: 'What is the weather in Paris?',
        tools: {
          get_weather: tool({
            description: 'The weather in a city.',
            inputSchema: jsonSchema({
              type: 'object', properties: { city: { type: 'string' } }, required: ['city'],
              additionalProperties: false,
            }),
            execute: async (input) => {
              calls.push(input);
              return `sunny in ${input.city}`;
            },
          }),
        },
        stopWhen: stepCountIs(3),
        maxRetries: 0,
        onError: ({ error }) => { throw error; },
      });
      const text = await result.text;
      assert.deepEqual(calls, [WEATHER_ARGS]);
      assert.match(text, /^The weather in Paris: .*sunny in Paris.*\.$/);
      const sent = sentSince(n);
      assert.equal(sent.length, 2);
      assert.ok(sent.every((s) => s.body.stream === true));
      assert.equal(sent[0].body.tools[0].function.name, 'get_weather');
      const toolMessage = sent[1].body.messages.at(-1);
      assert.equal(toolMessage.role, 'tool');
      assert.match(toolMessage.content, /sunny in Paris/);
    });
  });

  describe('OpenAI Agents SDK, default Runner (Responses API)', () => {
    before(() => {
      setTracingDisabled(true);
      setDefaultOpenAIClient(new OpenAI({
        baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0,
      }));
    });

    test('an agent with a tool answers from its result', TEST_TIMEOUT, async () => {
      const n = fake.requests.length;
      const getWeather = agentTool({
        name: 'get_weather',
        description: 'The weather in a city.',
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => `rainy in ${city}`,
      });
      const agent = new Agent({
        name: 'Weather', instructions: 'You answer weather questions.',
        model: 'chatonly/brain', tools: [getWeather],
      });
      const result = await run(agent, 'What is the weather in Paris?');
      assert.equal(result.finalOutput, weatherAnswer('rainy in Paris'));
      assert.ok(result.rawResponses.every((m) => m.responseId?.startsWith('resp_')));
      const sent = sentSince(n);
      assert.equal(sent.length, 2);
      assert.deepEqual(sent[0].body.messages[0],
        { role: 'system', content: 'You answer weather questions.' });
      assert.equal(sent[0].body.tools[0].function.name, 'get_weather');
      const [call, output] = sent[1].body.messages.slice(-2);
      assert.equal(call.tool_calls[0].function.name, 'get_weather');
      assert.deepEqual(output, { role: 'tool', tool_call_id: call.tool_calls[0].id, content: 'rainy in Paris' });
    });

    test('an agent on echo, streamed', TEST_TIMEOUT, async () => {
      const agent = new Agent({ name: 'Echo', model: 'echo/echo-1' });
      const stream = await run(agent, 'agents stream through echo', { stream: true });
      let text = '';
      for await (const event of stream.toTextStream()) text += event;
      await stream.completed;
      assert.equal(text, 'agents stream through echo');
      assert.equal(stream.finalOutput, 'agents stream through echo');
    });
  });
});
