// Drives the web console in a real browser (Debian's chromium, headless, via
// playwright-core) the way a person would, for crates/tessera/tests/console.rs.
//
// Reads its settings as JSON from the environment variable CONSOLE_TEST:
//   base, rootToken, serviceKey, tenantAdminKey, ownTenant, otherTenant,
//   integration, secretPath, secretValues (plaintexts that must never show
//   outside the one Reveal answer), screenshotDir, chromium, newTenant.
// Every page it visits is checked for: browser console errors, CSP
// violations, axe-core serious/critical violations, horizontal scrolling at
// 360 px, and plaintext secrets in any response. Each page is saved as a
// screenshot. Prints one line per step; exits 1 at the first failure.

import { createChecks, fail, step } from './lib.mjs';

const cfg = JSON.parse(process.env.CONSOLE_TEST);
let revealAllowed = false; // set only while the Reveal answer is loading
const checks = createChecks(cfg, {
  secretAllowed: (resp) => revealAllowed && resp.request().method() === 'POST' && resp.url().includes('/secret/reveal'),
});
const { state, look, expectText, navigating, newPage } = checks;

async function signIn(page, token) {
  await page.goto(`${cfg.base}/console`);
  await page.fill('#token', token);
  await navigating(page, () => page.click('button[type=submit]'));
}

async function run(viewport, label) {
  const browser = await checks.launch();
  try {
    const page = await newPage(browser, viewport);

    step(`${label}: the sign-in page`);
    const first = await page.goto(`${cfg.base}/console`);
    if (first.status() !== 200) fail(`GET /console answered ${first.status()}`);
    await expectText(page, 'h1', 'Tessera console');
    await look(page, `${label}-sign-in`);

    step(`${label}: a bad key is refused`);
    state.expectingRefusal = true;
    await signIn(page, 'tsr_not-a-real-key-at-all-0000000000');
    await expectText(page, '[role=alert]', 'not valid');
    await look(page, `${label}-sign-in-refused`);

    step(`${label}: a tenant_service key cannot sign in`);
    await signIn(page, cfg.serviceKey);
    await expectText(page, '[role=alert]', 'tenant_service');
    state.expectingRefusal = false;

    step(`${label}: sign in with the keyboard only`);
    await page.goto(`${cfg.base}/console`);
    await page.keyboard.press('Tab'); // the skip link is absent here: focus goes to the field (autofocus keeps it)
    await page.focus('#token');
    await page.keyboard.type(cfg.rootToken);
    await navigating(page, () => page.keyboard.press('Enter'));
    await expectText(page, 'h1', 'Overview');
    await expectText(page, '#usage', cfg.integration);
    if (await page.locator('#chart-daily rect').count() !== 30) fail('the 30-day chart does not have 30 bars');
    await look(page, `${label}-overview`);

    step(`${label}: create a tenant`);
    await navigating(page, () => page.click('nav >> text=Tenants'));
    await look(page, `${label}-tenants`);
    const newTenant = `${cfg.newTenant}-${label}`;
    await page.fill('#new-id', newTenant);
    await page.fill('#new-name', `New tenant ${label}`);
    await navigating(page, () => page.click('text=Create tenant'));
    if (!page.url().endsWith(`/console/tenants/${newTenant}?created=1`)) fail(`after Create tenant: ${page.url()}`);
    await expectText(page, '[role=status]', 'Tenant created');
    await look(page, `${label}-tenant-created`);

    step(`${label}: register an integration from a template; its client secret is write-only`);
    await navigating(page, () => page.click('nav >> text=Integrations'));
    await look(page, `${label}-integrations`);
    await page.fill('#int-key', `notion-${label}`);
    await page.fill('#int-name', `Notion ${label}`);
    await page.fill('#int-client_id', 'notion-client');
    await page.fill('#int-client_secret', cfg.clientSecret);
    await page.selectOption('#int-template', 'notion');
    await navigating(page, () => page.click('button:has-text("Register integration")'));
    await expectText(page, '[role=status]', `notion-${label} registered`);
    await expectText(page, '#integrations', 'client secret stored');
    await look(page, `${label}-integration-registered`);
    await navigating(page, () => page.click(`#integrations a:text-is("notion-${label}")`));
    if (await page.inputValue('#i-client_secret') !== '') fail('the client secret input is pre-filled');
    await look(page, `${label}-integration-edit`);
    await page.fill('#i-category', 'docs');
    await navigating(page, () => page.click('button:has-text("Save")'));
    await expectText(page, '[role=status]', 'Saved');
    if (await page.inputValue('#i-category') !== 'docs') fail('the edited category did not stick');
    await expectText(page, 'form.stack', 'one is stored');

    step(`${label}: create an API key, shown once, and revoke it`);
    await navigating(page, () => page.click('nav >> text=API keys'));
    await page.fill('#key-name', `ci-${label}`);
    await page.selectOption('#key-role', 'tenant_service');
    await page.fill('#key-tenant', cfg.ownTenant);
    await navigating(page, () => page.click('button:has-text("Create key")'));
    const createdKey = (await page.locator('#created-key').innerText()).trim();
    if (!createdKey.startsWith('tsr_')) fail(`no key shown after Create key: ${createdKey.slice(0, 8)}...`);
    await look(page, `${label}-api-key-created`);
    await page.goto(`${cfg.base}/console/api-keys`);
    if ((await page.content()).includes(createdKey)) fail('the API key is shown again after its creation');
    const usable = await page.request.get(`${cfg.base}/tenants/${cfg.ownTenant}/integrations`, { headers: { authorization: `Bearer ${createdKey}` } });
    if (usable.status() !== 200) fail(`the new key answered ${usable.status()}`);
    const keyRow = page.locator('#api-keys tbody tr', { hasText: `ci-${label}` });
    await navigating(page, () => keyRow.locator('button:has-text("Revoke")').click());
    await look(page, `${label}-api-key-revoke-confirm`);
    await navigating(page, () => page.click('button:has-text("Revoke key")'));
    await expectText(page, '[role=status]', 'revoked');
    const refused = await page.request.get(`${cfg.base}/tenants/${cfg.ownTenant}/integrations`, { headers: { authorization: `Bearer ${createdKey}` } });
    if (refused.status() !== 401) fail(`a revoked key answered ${refused.status()}`);

    step(`${label}: a refused tenant form shows its error next to the field`);
    await page.goto(`${cfg.base}/console/tenants`);
    state.expectingRefusal = true;
    await page.fill('#new-id', newTenant);
    await navigating(page, () => page.click('text=Create tenant'));
    await expectText(page, '#new-id-error', 'already exists');
    await look(page, `${label}-tenant-refused`);
    state.expectingRefusal = false;

    step(`${label}: search tenants`);
    await page.goto(`${cfg.base}/console/tenants?q=${cfg.ownTenant}`);
    await expectText(page, 'table', cfg.ownTenant);

    step(`${label}: a tenant with its connections`);
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}`);
    await expectText(page, 'table', cfg.integration);
    await look(page, `${label}-tenant`);

    step(`${label}: connect through the OAuth wizard against the real provider`);
    await page.selectOption('#connect-integration', cfg.oauthIntegration);
    await Promise.all([
      page.waitForURL(new RegExp(`/console/tenants/${cfg.ownTenant}\\?connected=`), { waitUntil: 'load' }),
      page.click('button:has-text("Connect")'),
    ]);
    await expectText(page, '[role=status]', `Connected to ${cfg.oauthIntegration}`);
    await expectText(page, '#connections', 'stored');
    await look(page, `${label}-connected`);

    step(`${label}: revoke asks first, then revokes`);
    const row = page.locator('#connections tbody tr', { hasText: `(${cfg.oauthIntegration})` });
    await navigating(page, () => row.locator('button:has-text("Revoke")').click());
    await expectText(page, 'h1', 'Revoke');
    await look(page, `${label}-revoke-confirm`);
    await navigating(page, () => page.click('button:has-text("Revoke tokens")'));
    await expectText(page, '[role=status]', 'revoked');

    step(`${label}: edit a connection's config; a bad field saves nothing`);
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}/integrations/${cfg.integration}/config`);
    await look(page, `${label}-config-form`);
    if (await page.inputValue(`#f-secret_key`) !== '') fail('a secret input is pre-filled');
    state.expectingRefusal = true;
    await page.fill('#f-timeout', 'soon');
    await page.check('input[name="a.secret_key"][value="replace"]');
    await page.fill('#f-secret_key', cfg.newSecret);
    await navigating(page, () => page.click('button:has-text("Save")'));
    await expectText(page, '#e-timeout', 'whole number');
    await expectText(page, '[role=alert]', 'Nothing was saved');
    await look(page, `${label}-config-refused`);
    state.expectingRefusal = false;
    if (await page.inputValue('#f-secret_key') !== '') fail('a refused form gives a secret back');
    await page.fill('#f-timeout', '45');
    await page.check('input[name="a.secret_key"][value="replace"]');
    await page.fill('#f-secret_key', cfg.newSecret);
    await navigating(page, () => page.click('button:has-text("Save")'));
    await expectText(page, '[role=status]', 'Saved');

    step(`${label}: add a webhook (its secret shown once) and rotate the tenant's key`);
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}/webhooks`);
    await page.fill('#wh-url', `http://127.0.0.1:9/hook-${label}`);
    await page.check('input[name=event][value="key.rotated"]');
    await navigating(page, () => page.click('button:has-text("Add webhook")'));
    const whSecret = (await page.locator('#webhook-secret').innerText()).trim();
    if (whSecret.length < 16) fail('no webhook secret shown');
    await look(page, `${label}-webhook-created`);
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}/webhooks`);
    if ((await page.content()).includes(whSecret)) fail('the webhook secret is shown again');
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}/keys`);
    await look(page, `${label}-keys`);
    await navigating(page, () => page.click('button:has-text("Rotate key")'));
    await navigating(page, () => page.click('button:has-text("Rotate key")'));
    await expectText(page, '[role=status]', 'new data key version');

    step(`${label}: edit an integration's defaults`);
    await page.goto(`${cfg.base}/console/integrations/${cfg.integration}/defaults`);
    await expectText(page, 'h1', 'Defaults of');
    await look(page, `${label}-defaults-form`);
    await page.fill('#f-timeout', '20');
    await navigating(page, () => page.click('button:has-text("Save")'));
    await expectText(page, '[role=status]', 'Saved');
    if (await page.inputValue('#f-timeout') !== '20') fail('the default did not stick');

    step(`${label}: Configuration shows secrets as [SECRET] with their integration`);
    await page.goto(`${cfg.base}/console/configuration?tenant=${cfg.ownTenant}`);
    await expectText(page, '#configuration', '[SECRET]');
    await expectText(page, '#configuration thead', 'Integration');
    await expectText(page, '#configuration tbody', cfg.integration);
    await look(page, `${label}-configuration`);

    step(`${label}: secrets, versions and Reveal`);
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}/secrets`);
    await look(page, `${label}-secrets`);
    await navigating(page, () => page.click(`text=${cfg.secretPath}`));
    await look(page, `${label}-secret`);
    revealAllowed = true;
    await navigating(page, () => page.click('button:has-text("Reveal")'));
    revealAllowed = false;
    await expectText(page, '#revealed-value', cfg.secretValues[0]);
    await page.screenshot({ path: `${cfg.screenshotDir}/${label}-revealed.png`, fullPage: true });

    step(`${label}: delete a version after a confirmation, then undelete it`);
    await page.goto(`${cfg.base}/console/tenants/${cfg.ownTenant}/secret?path=${encodeURIComponent(cfg.secretPath)}`);
    await navigating(page, () => page.click('button:has-text("Delete")'));
    await expectText(page, 'h1', 'Delete version 1');
    await look(page, `${label}-secret-delete-confirm`);
    await navigating(page, () => page.click('button:has-text("Delete version")'));
    await expectText(page, '[role=status]', 'Version deleted');
    await navigating(page, () => page.click('button:has-text("Undelete")'));
    await navigating(page, () => page.click('button:has-text("Undelete version")'));
    await expectText(page, '[role=status]', 'Version undeleted');
    // Leave the Reveal answer before the next checks: its page is the only one allowed to hold the value.
    await page.goto(`${cfg.base}/console/audit?action=secret.read&tenant=${cfg.ownTenant}`);

    step(`${label}: the Reveal is in the Audit log`);
    await expectText(page, '#audit-events', 'secret.read');
    await expectText(page, '#audit-events', 'root');
    await look(page, `${label}-audit`);
    for (const [format, type, first] of [['csv', 'text/csv', 'seq,id,at'], ['jsonl', 'application/jsonl', '{"seq"']]) {
      const exp = await page.request.get(`${cfg.base}/console/audit/export?format=${format}&action=secret.read`);
      if (exp.status() !== 200 || !exp.headers()['content-type'].startsWith(type)) fail(`audit export ${format}: ${exp.status()} ${exp.headers()['content-type']}`);
      const text = await exp.text();
      if (!text.startsWith(first) || !text.includes('secret.read')) fail(`audit export ${format} does not hold the events: ${text.slice(0, 200)}`);
      if (text.includes('config.update')) fail(`audit export ${format} ignores its filter`);
    }
    await page.goto(`${cfg.base}/console/audit?verify=1`);
    await expectText(page, '[role=status]', 'The chain verifies');

    step(`${label}: a form without its CSRF token is refused`);
    const forged = await page.request.post(`${cfg.base}/console/tenants`, {
      form: { id: `forged-${label}`, name: 'Forged' },
      maxRedirects: 0,
    });
    if (forged.status() !== 403) fail(`a form without CSRF token answered ${forged.status()}`);
    const wrong = await page.request.post(`${cfg.base}/console/tenants`, {
      form: { id: `forged-${label}`, name: 'Forged', csrf: 'f'.repeat(64) },
      maxRedirects: 0,
    });
    if (wrong.status() !== 403) fail(`a form with a wrong CSRF token answered ${wrong.status()}`);

    step(`${label}: sign out ends the session`);
    await navigating(page, () => page.click('text=Sign out'));
    await expectText(page, 'h1', 'Tessera console');
    const after = await page.request.get(`${cfg.base}/console/tenants`, { maxRedirects: 0 });
    if (after.status() !== 303) fail(`after sign-out /console/tenants answered ${after.status()}`);

    step(`${label}: a tenant admin sees only its own tenant`);
    await signIn(page, cfg.tenantAdminKey);
    await expectText(page, 'h1', 'Overview');
    await page.goto(`${cfg.base}/console/tenants`);
    await expectText(page, 'table', cfg.ownTenant);
    const tables = await page.locator('table').innerText();
    if (tables.includes(cfg.otherTenant)) fail('a tenant admin sees another tenant in the list');
    state.expectingRefusal = true;
    for (const path of [
      `/console/tenants/${cfg.otherTenant}`,
      `/console/tenants/${cfg.otherTenant}/secrets`,
      `/console/configuration?tenant=${cfg.otherTenant}`,
    ]) {
      const r = await page.goto(`${cfg.base}${path}`);
      if (r.status() !== 404) fail(`a tenant admin got ${r.status()} for ${path}`);
    }
    await look(page, `${label}-tenant-admin-not-found`);
    await page.close();
  } finally {
    await browser.close();
  }
}

try {
  await run({ width: 1280, height: 900 }, 'desktop');
  await run({ width: 360, height: 740 }, 'narrow');
  if (state.problems.length) fail(state.problems.join('\n'));
  console.log('ok');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  process.exit(1);
}
