// End to end: the OpenAI SDK sees the gateway's guard refusals as its own error classes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { keygen, startGateway } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const user = (content) => [{ role: 'user', content }];

describe('guards through the OpenAI SDK', () => {
  let gateway;
  const rpmKey = keygen('developer');
  const brokeKey = keygen('developer');
  const agentKey = keygen('agent');

  before(async () => {
    gateway = await startGateway({
      models: { 'echo/priced': { input_per_mtok: 1, output_per_mtok: 1 } },
      keys: [
        { id: 'one-a-minute', class: 'developer', secret_sha256: rpmKey.sha256, rpm: 1 },
        { id: 'broke', class: 'developer', secret_sha256: brokeKey.sha256, daily_usd: 0 },
        { id: 'bot', class: 'agent', secret_sha256: agentKey.sha256, loop_max: 1, loop_window: '60s' },
      ],
    });
  });

  after(async () => {
    const exit = await gateway?.stop();
    if (gateway) assert.deepEqual(exit, { code: 0, signal: null }, gateway.output());
  });

  const client = (secret) => new OpenAI({ baseURL: gateway.baseURL, apiKey: secret, maxRetries: 0, timeout: 10_000 });

  test('RPM exceeded raises RateLimitError with retry-after and x-ratelimit headers', TEST_TIMEOUT, async () => {
    const c = client(rpmKey.secret);
    const { data, response } = await c.chat.completions
      .create({ model: 'echo/echo-1', messages: user('first') })
      .withResponse();
    assert.equal(data.choices[0].message.content, 'first');
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1');
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '0');
    await assert.rejects(
      c.chat.completions.create({ model: 'echo/echo-1', messages: user('second') }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 429);
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.ok(Number(err.headers.get('retry-after')) >= 1);
        return true;
      },
    );
  });

  test('an exhausted budget raises PermissionDeniedError naming the window', TEST_TIMEOUT, async () => {
    await assert.rejects(
      client(brokeKey.secret).chat.completions.create({ model: 'echo/priced', messages: user('hi') }),
      (err) => {
        assert.ok(err instanceof OpenAI.PermissionDeniedError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 403);
        assert.equal(err.code, 'budget_exceeded');
        assert.match(err.message, /Daily budget/);
        return true;
      },
    );
  });

  test('an agent repeating itself raises RateLimitError with code loop_detected', TEST_TIMEOUT, async () => {
    const c = client(agentKey.secret);
    await c.chat.completions.create({ model: 'echo/echo-1', messages: user('again') });
    await assert.rejects(
      c.chat.completions.create({ model: 'echo/echo-1', messages: user('again') }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}`);
        assert.equal(err.code, 'loop_detected');
        return true;
      },
    );
  });
});
