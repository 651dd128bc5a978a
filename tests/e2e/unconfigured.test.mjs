// End to end: a newcomer starts the repository's default config without any provider key and
// uses the OpenAI SDK. Hosted providers are off: asking for their models is 503
// provider_not_configured naming the variable to set (no connection attempt, no 502), the
// model list leaves them out, the start-up log says which are off, and echo still answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDefaultGateway } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const HOOK_TIMEOUT = { timeout: 30_000 };
const PROVIDER_KEYS = ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'DEEPSEEK_API_KEY',
  'GROQ_API_KEY', 'MISTRAL_API_KEY'];

describe('the default config without provider keys, through the OpenAI SDK', () => {
  let gateway;
  let client;

  before(async () => {
    gateway = await startDefaultGateway({ unset: PROVIDER_KEYS });
    client = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.secret, maxRetries: 0, timeout: 10_000 });
  }, HOOK_TIMEOUT);

  after(async () => {
    const exit = await gateway?.stop();
    if (gateway) {
      assert.deepEqual(exit, { code: 0, signal: null }, `michi-gateway output:\n${gateway.output()}`);
    }
  }, HOOK_TIMEOUT);

  test('an OpenAI model: 503 provider_not_configured naming OPENAI_API_KEY, at once', TEST_TIMEOUT, async () => {
    for (const model of ['openai/gpt-4.1', 'openai/gpt-4o-mini']) { // a model, and the route of that name
      let caught;
      await assert.rejects(
        client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
        (err) => { caught = err; return true; });
      assert.ok(caught instanceof OpenAI.InternalServerError, `${caught?.constructor?.name}: ${caught?.message}`);
      assert.equal(caught.status, 503, caught.message);
      assert.equal(caught.code, 'provider_not_configured', JSON.stringify(caught.error));
      assert.match(caught.message, /OPENAI_API_KEY/);
      assert.equal(caught.headers.get('x-michi-attempts') ?? '0', '0', 'no upstream attempt');
    }
  });

  test('models.list leaves the providers that are off out; echo stays', TEST_TIMEOUT, async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('echo/echo-1'), ids.join(' '));
    const off = ids.filter((id) => /^(openai|claude|gemini|deepseek|groq|mistral)\//.test(id) || id === 'auto');
    assert.deepEqual(off, [], `models of providers that are off: ${off.join(' ')}`);
    let caught;
    await assert.rejects(client.models.retrieve('openai/gpt-4o-mini'), (err) => { caught = err; return true; });
    assert.ok(caught instanceof OpenAI.NotFoundError, `${caught?.constructor?.name}: ${caught?.message}`);
  });

  test('echo answers; the start-up log says which providers are off and why', TEST_TIMEOUT, async () => {
    const completion = await client.chat.completions.create({
      model: 'echo/echo-1', messages: [{ role: 'user', content: 'still here' }],
    });
    assert.equal(completion.choices[0].message.content, 'still here');
    const log = gateway.output();
    assert.match(log, /provider "openai" is off: OPENAI_API_KEY is not set/);
    assert.match(log, /provider "claude" is off: ANTHROPIC_API_KEY is not set/);
  });
});
