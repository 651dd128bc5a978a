// End to end: the official OpenAI SDK against a route with the response cache. The SDK sees the
// same answers, whole and streamed, whether they come from the upstream or from the cache; only
// the x-michi-cache header tells them apart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeUpstream, startGateway } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };

function respond({ body }) {
  const text = `answer to: ${body.messages.at(-1).content}`;
  if (body.stream) {
    const chunk = (choices, extra = {}) => ({
      id: 'chatcmpl-c', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-test',
      choices, ...extra,
    });
    return {
      sse: [
        chunk([{ index: 0, delta: { role: 'assistant', content: text }, finish_reason: null }]),
        chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]),
        chunk([], { usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }),
      ],
    };
  }
  return {
    json: {
      id: 'chatcmpl-w', object: 'chat.completion', created: 1_700_000_000, model: 'gpt-test',
      choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    },
  };
}

describe('OpenAI SDK against a cached route', () => {
  let fake;
  let gateway;
  let client;

  before(async () => {
    fake = await startFakeUpstream(respond);
    gateway = await startGateway({
      providers: { fake: { type: 'openai', base_url: fake.baseURL, api_key: 'sk-upstream-test' } },
      models: { 'fake/gpt-test': { input_per_mtok: 1, output_per_mtok: 2 } },
      routes: { cached: { targets: ['fake/gpt-test'], cache: { ttl: '10m' } } },
    });
    client = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
  });

  after(async () => {
    const exit = await gateway?.stop();
    await fake?.close();
    if (gateway) assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
  });

  test('a repeated completion comes from the cache, the same to the SDK', TEST_TIMEOUT, async () => {
    const ask = () => client.chat.completions
      .create({ model: 'cached', messages: [{ role: 'user', content: 'whole' }] })
      .withResponse();
    const first = await ask();
    const again = await ask();
    assert.equal(first.response.headers.get('x-michi-cache'), 'miss');
    assert.equal(again.response.headers.get('x-michi-cache'), 'hit');
    assert.deepEqual(again.data, first.data);
    assert.equal(again.data.choices[0].message.content, 'answer to: whole');
    assert.equal(fake.requests.filter((r) => r.body.messages?.[0]?.content === 'whole').length, 1);
  });

  test('a repeated stream is replayed as a stream', TEST_TIMEOUT, async () => {
    const ask = async () => {
      const { data, response } = await client.chat.completions
        .create({ model: 'cached', messages: [{ role: 'user', content: 'streamed' }], stream: true })
        .withResponse();
      const chunks = [];
      for await (const chunk of data) chunks.push(chunk);
      return { chunks, cache: response.headers.get('x-michi-cache') };
    };
    const first = await ask();
    const again = await ask();
    assert.equal(first.cache, 'miss');
    assert.equal(again.cache, 'hit');
    assert.deepEqual(again.chunks, first.chunks);
    assert.equal(again.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'answer to: streamed');
    assert.equal(fake.requests.filter((r) => r.body.messages?.[0]?.content === 'streamed').length, 1);
  });
});
