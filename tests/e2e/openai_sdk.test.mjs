// End to end: the official OpenAI SDK talks to a real michi-gateway, which serves the built-in
// echo provider and proxies an OpenAI-type provider to a fake upstream on this machine.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeUpstream, startGateway } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const UPSTREAM_KEY = 'sk-upstream-test';

// What the fake upstream answers.
const FAKE_TEXT_PIECES = ['Hello', ' from', ' the fake', ' upstream.'];
const FAKE_TEXT = FAKE_TEXT_PIECES.join('');
const FAKE_USAGE = { prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 };
const FAIL_PROMPT = 'please answer 400';
const FAIL_MESSAGE = "Invalid 'messages[0].content': the fake upstream refuses this prompt.";

function fakeCompletion() {
  return {
    id: 'chatcmpl-fake-1',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-test',
    choices: [{ index: 0, message: { role: 'assistant', content: FAKE_TEXT }, logprobs: null, finish_reason: 'stop' }],
    usage: FAKE_USAGE,
  };
}

function fakeChunks(includeUsage) {
  const chunk = (choices, extra = {}) => ({
    id: 'chatcmpl-fake-2', object: 'chat.completion.chunk', created: 1_700_000_000,
    model: 'gpt-test', choices, ...extra,
  });
  const chunks = [chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])];
  for (const piece of FAKE_TEXT_PIECES) {
    chunks.push(chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]));
  }
  chunks.push(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
  if (includeUsage) chunks.push(chunk([], { usage: FAKE_USAGE }));
  return chunks;
}

function fakeRespond({ body }) {
  if (body.messages?.at(-1)?.content === FAIL_PROMPT) {
    return {
      status: 400,
      json: { error: { message: FAIL_MESSAGE, type: 'invalid_request_error', param: 'messages', code: null } },
    };
  }
  if (body.stream) return { sse: fakeChunks(body.stream_options?.include_usage === true) };
  return { json: fakeCompletion() };
}

const user = (content) => [{ role: 'user', content }];

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const joinDeltas = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');

/** Asserts that `promise` rejects with an OpenAI SDK error of class `ErrorClass`; returns it. */
async function rejectsWith(promise, ErrorClass) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${caught?.constructor?.name}: ${caught?.message}`);
  return caught;
}

describe('OpenAI SDK against michi-gateway', () => {
  let fake;
  let gateway;
  let client;

  before(async () => {
    fake = await startFakeUpstream(fakeRespond);
    gateway = await startGateway({
      providers: { fake: { type: 'openai', base_url: fake.baseURL, api_key: UPSTREAM_KEY } },
      models: { 'fake/gpt-test': { input_per_mtok: 1, output_per_mtok: 2 } },
    });
    client = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
  });

  after(async () => {
    const exit = await gateway?.stop();
    await fake?.close();
    if (gateway) {
      assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
    }
  });

  test('echo: chat.completions.create returns the echoed text and usage', TEST_TIMEOUT, async () => {
    const text = 'hello michi, echo this back';
    const completion = await client.chat.completions.create({ model: 'echo/echo-1', messages: user(text) });

    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0].message.role, 'assistant');
    assert.equal(completion.choices[0].message.content, text);
    assert.equal(completion.choices[0].finish_reason, 'stop');
    const { prompt_tokens, completion_tokens, total_tokens } = completion.usage;
    assert.ok(prompt_tokens > 0 && completion_tokens > 0, JSON.stringify(completion.usage));
    assert.equal(total_tokens, prompt_tokens + completion_tokens);
  });

  test('echo: streaming deltas join to the echoed text; include_usage ends with usage', TEST_TIMEOUT, async () => {
    const text = 'stream these words one by one';

    const plain = await collect(await client.chat.completions.create({
      model: 'echo/echo-1', messages: user(text), stream: true,
    }));
    assert.ok(plain.length > 1, `expected several chunks, got ${plain.length}`);
    assert.equal(joinDeltas(plain), text);
    assert.ok(plain.every((c) => c.object === 'chat.completion.chunk'));
    assert.ok(plain.every((c) => !c.usage), 'no usage chunk unless stream_options.include_usage');

    const withUsage = await collect(await client.chat.completions.create({
      model: 'echo/echo-1', messages: user(text), stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(joinDeltas(withUsage), text);
    const last = withUsage.at(-1);
    assert.ok(last.usage, `last chunk has no usage: ${JSON.stringify(last)}`);
    assert.ok(last.usage.completion_tokens > 0 && last.usage.prompt_tokens > 0, JSON.stringify(last.usage));
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
  });

  test('models.list() contains echo/echo-1', TEST_TIMEOUT, async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.ok(ids.includes('echo/echo-1'), `models: ${ids.join(', ')}`);
    assert.ok(ids.includes('fake/gpt-test'), `models: ${ids.join(', ')}`);
  });

  test('a wrong key throws AuthenticationError (401 invalid_api_key)', TEST_TIMEOUT, async () => {
    const intruder = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'mk-dev-not-a-real-key', maxRetries: 0, timeout: 10_000 });
    const err = await rejectsWith(
      intruder.chat.completions.create({ model: 'echo/echo-1', messages: user('let me in') }),
      OpenAI.AuthenticationError,
    );
    assert.equal(err.status, 401);
    assert.equal(err.code, 'invalid_api_key');
  });

  test('openai-type upstream: non-stream relayed, model rewritten, provider key used', TEST_TIMEOUT, async () => {
    const before = fake.requests.length;
    const completion = await client.chat.completions.create({ model: 'fake/gpt-test', messages: user('hi upstream') });

    assert.equal(completion.id, 'chatcmpl-fake-1'); // relayed as the upstream sent it
    assert.equal(completion.choices[0].message.content, FAKE_TEXT);
    assert.deepEqual(completion.usage, FAKE_USAGE);

    assert.equal(fake.requests.length, before + 1, 'exactly one upstream request');
    const seen = fake.requests.at(-1);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/v1/chat/completions');
    assert.equal(seen.body.model, 'gpt-test');
    assert.deepEqual(seen.body.messages, user('hi upstream'));
    assert.equal(seen.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.ok(!JSON.stringify(seen.headers).includes(gateway.secret), 'client secret leaked upstream');
  });

  test('openai-type upstream: stream relayed chunk for chunk', TEST_TIMEOUT, async () => {
    const before = fake.requests.length;
    const chunks = await collect(await client.chat.completions.create({
      model: 'fake/gpt-test', messages: user('stream from upstream'), stream: true,
    }));

    assert.equal(joinDeltas(chunks), FAKE_TEXT);
    assert.ok(chunks.every((c) => c.id === 'chatcmpl-fake-2'), 'chunks are the upstream\'s');
    assert.equal(chunks.at(-1).choices[0]?.finish_reason, 'stop');
    // The gateway may ask the upstream for usage, but must not pass that chunk on unasked.
    assert.ok(chunks.every((c) => !c.usage), `unrequested usage chunk reached the client: ${JSON.stringify(chunks.at(-1))}`);

    assert.equal(fake.requests.length, before + 1, 'exactly one upstream request');
    const seen = fake.requests.at(-1);
    assert.equal(seen.path, '/v1/chat/completions');
    assert.equal(seen.body.model, 'gpt-test');
    assert.equal(seen.body.stream, true);
    assert.equal(seen.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.ok(!JSON.stringify(seen.headers).includes(gateway.secret), 'client secret leaked upstream');
  });

  test('an upstream 400 reaches the SDK as BadRequestError with the upstream message', TEST_TIMEOUT, async () => {
    const before = fake.requests.length;
    const err = await rejectsWith(
      client.chat.completions.create({ model: 'fake/gpt-test', messages: user(FAIL_PROMPT) }),
      OpenAI.BadRequestError,
    );
    assert.equal(err.status, 400);
    assert.equal(err.error?.message, FAIL_MESSAGE);
    assert.equal(err.param, 'messages');
    assert.equal(fake.requests.length, before + 1, 'a 400 is not retried or fallen back');
  });

  test('an unknown model throws NotFoundError (404 model_not_found)', TEST_TIMEOUT, async () => {
    const err = await rejectsWith(
      client.chat.completions.create({ model: 'nope/no-such-model', messages: user('anyone?') }),
      OpenAI.NotFoundError,
    );
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
  });
});
