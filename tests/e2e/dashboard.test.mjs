// The web dashboard (/dashboard/) in a real browser (Debian's chromium, driven by
// playwright-core) against a real michi-gateway with the admin API on: sign in, see a key's
// spend, create a key (its secret works from node), revoke it (it stops working), usage chart,
// route edit, and a wrong admin key. Screenshots go to tests/e2e/artifacts/.
// MICHI_DASHBOARD_DIR=../../web/dashboard serves the page from disk instead of the binary.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startGateway } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** POST /v1/chat/completions with `secret`; returns the status. */
async function chat(gw, secret, model = 'echo/echo-1') {
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello dashboard, count my spend' }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The text of the element with this data-testid, once `ok(text)` holds (the keys table refreshes every 5 s). */
async function waitText(page, testid, ok, timeout = 12_000) {
  const sel = `[data-testid="${testid}"]`;
  await page.waitForSelector(sel, { timeout });
  const deadline = Date.now() + timeout;
  let text;
  while (Date.now() < deadline) {
    text = (await page.textContent(sel).catch(() => null)) ?? '';
    if (ok(text)) return text;
    await page.waitForTimeout(200);
  }
  assert.fail(`[data-testid="${testid}"]: unexpected text ${JSON.stringify(text)}`);
}

test('dashboard: sign in, spend, create and revoke a key, usage, routes', { timeout: 120_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh --test)`);
  await mkdir(ARTIFACTS, { recursive: true });

  const gw = await startGateway({
    admin: true,
    models: { 'echo/priced': { input_per_mtok: 1000, output_per_mtok: 1000 } },
    routes: { chat: { targets: ['echo/echo-1', 'echo/priced'] } },
  });
  const profile = await mkdtemp(path.join(tmpdir(), 'michi-chromium-'));
  let browser;
  t.after(async () => {
    await browser?.close().catch(() => {});
    await rm(profile, { recursive: true, force: true });
    await gw.stop();
  });

  // Spend on the config key 'e2e' before the page opens.
  assert.equal(await chat(gw, gw.secret, 'echo/priced'), 200);

  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 },
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text()); });
  page.on('dialog', (d) => d.accept()); // the revoke confirmation
  if (process.env.MICHI_DASHBOARD_DIR) {
    // Working on the page without rebuilding the daemon: its files from disk, the API for real.
    await page.route('**/dashboard/*', async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop() || 'index.html';
      const response = await route.fetch(); // the daemon's headers (CSP included), newer bytes
      route.fulfill({ response, body: await readFile(path.join(process.env.MICHI_DASHBOARD_DIR, name)) });
    });
  }
  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });

  try {
    const res = await page.goto(`${gw.origin}/dashboard/`);
    assert.equal(res.status(), 200);

    // A wrong admin key is refused with a message, and the app stays hidden.
    await page.fill('[data-testid="login-key"]', 'not-the-admin-key');
    await page.click('[data-testid="login-submit"]');
    const loginError = await waitText(page, 'login-error', (s) => s.length > 0);
    assert.match(loginError, /wrong admin key/i);
    assert.equal(await page.isVisible('[data-testid="keys-table"]'), false);

    // The right one: the keys table, with e2e's spend today above $0.
    await page.fill('[data-testid="login-key"]', gw.adminKey);
    await page.click('[data-testid="login-submit"]');
    await page.waitForSelector('[data-testid="keys-table"]');
    const spend = await waitText(page, 'spend-today-e2e', (s) => /\$\d/.test(s));
    assert.ok(Number(spend.match(/\$([\d.]+)/)[1]) > 0, `spend today of e2e: ${spend}`);
    assert.match(await page.textContent('[data-testid="key-row-e2e"]'), /developer[\s\S]*config/);

    // Create a key: its secret is shown once, and it works.
    await page.fill('[data-testid="create-key-id"]', 'dash-created');
    await page.selectOption('[data-testid="create-key-class"]', 'application');
    await page.fill('[data-testid="create-key-daily"]', '2.5');
    await page.fill('[data-testid="create-key-rpm"]', '30');
    await page.click('[data-testid="create-key-submit"]');
    await page.waitForSelector('[data-testid="new-secret"]', { state: 'visible' });
    const secret = await page.inputValue('[data-testid="new-secret"]');
    assert.match(secret, /^mk-app-[A-Za-z0-9]{32,}$/);
    assert.match(await page.textContent('[data-testid="new-secret-box"]'), /will not see it again/i);
    await waitText(page, 'spend-today-dash-created', (s) => s.includes('$2.50'));
    await shot('dashboard-created.png');
    assert.equal(await chat(gw, secret), 200);

    // The same id again: 409, shown by the form.
    await page.fill('[data-testid="create-key-id"]', 'dash-created');
    await page.click('[data-testid="create-key-submit"]');
    assert.match(await waitText(page, 'create-key-error', (s) => s.length > 0), /already exists/);

    // After "Done" and a reload (still signed in: sessionStorage) the secret is gone for good.
    await page.click('[data-testid="dismiss-secret"]');
    await page.reload();
    await page.waitForSelector('[data-testid="keys-table"]');
    assert.equal(await page.isVisible('[data-testid="new-secret-box"]'), false);
    assert.equal(await page.inputValue('[data-testid="new-secret"]'), '');

    // Revoke it (the confirm dialog is accepted): badge in the table, 401 from the API.
    await page.click('[data-testid="revoke-dash-created"]');
    await page.waitForSelector('[data-testid="revoked-dash-created"]');
    assert.equal(await page.isVisible('[data-testid="revoke-dash-created"]'), false);
    assert.equal(await chat(gw, secret), 401);
    await shot('dashboard.png');

    // Usage: the chart draws today's requests; per key, e2e and dash-created are listed.
    await page.click('[data-testid="tab-usage"]');
    await page.waitForSelector('[data-testid="usage-chart"] svg rect.bar'); // today's cost
    await page.selectOption('[data-testid="usage-group"]', 'key');
    const usage = await waitText(page, 'usage-table', (s) => s.includes('dash-created'));
    assert.match(usage, /e2e/);
    assert.match(usage, /Cached in.*Caching saved.*Cache hits/); // prompt and response caching per key
    await shot('dashboard-usage.png');

    // Routes: the chain, a rejected edit with the server's reason, then a saved reorder.
    await page.click('[data-testid="tab-routes"]');
    assert.match(await waitText(page, 'route-chat', (s) => s.includes('echo/priced')), /echo\/echo-1\s*→\s*echo\/priced/);
    await page.click('[data-testid="route-edit-chat"]');
    await page.fill('[data-testid="route-targets-chat"]', 'echo/priced, nope/missing');
    await page.click('[data-testid="route-save-chat"]');
    assert.match(await waitText(page, 'route-error-chat', (s) => s.length > 0), /nope/);
    await page.fill('[data-testid="route-targets-chat"]', 'echo/priced, echo/echo-1');
    await page.click('[data-testid="route-save-chat"]');
    await page.waitForSelector('[data-testid="route-form-chat"]', { state: 'hidden' });
    assert.match(await page.textContent('[data-testid="route-chat"]'), /echo\/priced\s*→\s*echo\/echo-1/);
    // From node, over a connection kept alive from before the PUT: it must see the change too.
    const routes = await (await fetch(`${gw.origin}/admin/routes`, {
      headers: { authorization: `Bearer ${gw.adminKey}` },
    })).json();
    assert.deepEqual(routes.data.find((r) => r.name === 'chat').targets, ['echo/priced', 'echo/echo-1'],
      'GET /admin/routes after the PUT still shows the old targets');
    await shot('dashboard-routes.png');

    // Signing out forgets the key.
    await page.click('[data-testid="logout"]');
    await page.waitForSelector('[data-testid="login-key"]', { state: 'visible' });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(pageErrors, []);
  } catch (err) {
    await shot('dashboard-failure.png').catch(() => {});
    err.message += `\n--- michi-gateway output (tail) ---\n${gw.output().split('\n').slice(-30).join('\n')}`;
    throw err;
  }
});
