// End to end: two gateways on one Redis (store.redis) hold one rate limit between them, as the
// OpenAI SDK sees it; Redis gone is a 503 the SDK raises, not a request let through; and an
// admin key made on one of them works on the other until it is revoked there.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { keygen, startGateway, startRedis } from './helpers.mjs';

const TEST_TIMEOUT = { timeout: 15_000 };
const user = (content) => [{ role: 'user', content }];

describe('the ledger shared through Redis, through the OpenAI SDK', () => {
  let redis;
  const gateways = [];
  const key = keygen('developer');

  before(async () => {
    redis = await startRedis();
    const keys = [{ id: 'two-a-minute', class: 'developer', secret_sha256: key.sha256, rpm: 2 }];
    for (let i = 0; i < 2; i++) gateways.push(await startGateway({ keys, redis: redis.url }));
  });

  after(async () => {
    for (const g of gateways) {
      const exit = await g.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, g.output());
    }
    await redis?.stop();
  });

  const client = (g) => new OpenAI({ baseURL: g.baseURL, apiKey: key.secret, maxRetries: 0, timeout: 10_000 });

  test('one RPM limit across both replicas; Redis gone raises InternalServerError', TEST_TIMEOUT, async () => {
    const [a, b] = gateways.map(client);
    const first = await a.chat.completions.create({ model: 'echo/echo-1', messages: user('one') }).withResponse();
    assert.equal(first.response.headers.get('x-ratelimit-remaining-requests'), '1');
    const second = await b.chat.completions.create({ model: 'echo/echo-1', messages: user('two') }).withResponse();
    assert.equal(second.response.headers.get('x-ratelimit-remaining-requests'), '0');
    await assert.rejects(
      a.chat.completions.create({ model: 'echo/echo-1', messages: user('three') }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.ok(Number(err.headers.get('retry-after')) >= 1);
        return true;
      },
    );
    await redis.stop();
    await assert.rejects(
      b.chat.completions.create({ model: 'echo/echo-1', messages: user('four') }),
      (err) => {
        assert.ok(err instanceof OpenAI.InternalServerError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 503);
        assert.equal(err.code, 'ledger_unavailable');
        return true;
      },
    );
  });
});

describe('admin keys shared through Redis, through the OpenAI SDK', () => {
  let redis;
  const gateways = [];
  const adminKey = `adm-${keygen('developer').secret}`;

  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) gateways.push(await startGateway({ admin: adminKey, redis: redis.url }));
  });

  after(async () => {
    for (const g of gateways) {
      const exit = await g.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, g.output());
    }
    await redis?.stop();
  });

  const admin = (g, method, path, body) => fetch(`${g.origin}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

  // Calls fn until it settles the way `done` wants, for at most 5 s: the other replica picks
  // a change up within a fifth of a second.
  async function eventually(fn, done) {
    const giveUp = Date.now() + 5_000;
    for (;;) {
      const outcome = await fn().then((value) => ({ value }), (error) => ({ error }));
      if (done(outcome) || Date.now() > giveUp) return outcome;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  test('a key made on one replica works on the other; revoked there, the SDK raises AuthenticationError here',
    TEST_TIMEOUT, async () => {
      const [a, b] = gateways;
      const created = await admin(a, 'POST', '/admin/keys', { id: 'sdk-bot', class: 'application' });
      assert.equal(created.status, 201);
      const { secret } = await created.json();
      const call = (g) => new OpenAI({ baseURL: g.baseURL, apiKey: secret, maxRetries: 0, timeout: 10_000 })
        .chat.completions.create({ model: 'echo/echo-1', messages: user('hello') });
      const onB = await eventually(() => call(b), (o) => !o.error);
      assert.ok(!onB.error, `the key never worked on the other replica: ${onB.error}`);
      assert.equal(onB.value.object, 'chat.completion');

      assert.equal((await admin(b, 'DELETE', '/admin/keys/sdk-bot')).status, 200);
      const onA = await eventually(() => call(a), (o) => o.error instanceof OpenAI.AuthenticationError);
      assert.ok(onA.error instanceof OpenAI.AuthenticationError,
        `got ${onA.error?.constructor?.name ?? 'a completion'}: ${onA.error?.message}`);
    });
});
