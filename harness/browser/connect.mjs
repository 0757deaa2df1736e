// Drives the Hosted Connect page in a real browser (Debian's chromium,
// headless, via playwright-core) the way a platform's user would, for
// crates/tessera/tests/api/connect.rs.
//
// Reads its settings as JSON from the environment variable CONNECT_TEST:
//   base, url (a session allowing an OAuth and an API-key integration),
//   otherUrl (a second session of the same tenant), platform (an origin in
//   TESSERA_CONNECT_ORIGINS), stranger (an origin that is not), redirect (the
//   session's redirectUri), oauth / fields (integration keys) with their
//   names, publicValue / secretValue (what the person types), secretValues
//   (plaintexts no page may show), screenshotDir, chromium.
// Each page is checked as lib.mjs says; each is saved as a screenshot.
// Prints one line per step; exits 1 at the first failure.

import { createChecks, fail, step } from './lib.mjs';

const cfg = JSON.parse(process.env.CONNECT_TEST);
const checks = createChecks(cfg, { frameable: (url) => url.includes('/connect/') });
const { state, look, expectText, navigating, newPage } = checks;

function row(page, name) {
  return page.locator('#integrations li', { hasText: name });
}

async function connectBoth(page) {
  step('the page lists the allowed integrations');
  const first = await page.goto(cfg.url);
  if (first.status() !== 200) fail(`the connect page answered ${first.status()}`);
  await expectText(page, 'h1', 'Connect your accounts');
  await expectText(page, '#integrations', cfg.oauthName);
  await expectText(page, '#integrations', cfg.fieldsName);
  await expectText(page, '.connect-brand', cfg.title);
  await look(page, 'page');

  step('an OAuth integration runs the provider\'s flow and comes back');
  await Promise.all([
    page.waitForURL(/\/connect\/[^/?]+\?connected=.*status=success/, { waitUntil: 'load' }),
    row(page, cfg.oauthName).locator('button').click(),
  ]);
  await expectText(page, '[role=status]', `${cfg.oauthName} is connected`);
  await expectText(page, '#integrations', 'connected');
  await look(page, 'oauth-connected');

  step('an API-key integration: the form says what is missing, next to the field');
  await navigating(page, () => row(page, cfg.fieldsName).locator('a').click());
  await expectText(page, 'h1', `Connect ${cfg.fieldsName}`);
  if ((await page.locator('input[type=password]').count()) < 1) fail('no write-only secret input');
  await look(page, 'fields-form');
  state.expectingRefusal = true;
  await navigating(page, () => page.click('button[type=submit]'));
  await expectText(page, '[role=alert]', 'Nothing was saved');
  await expectText(page, '.field-error', 'Enter a value');
  await look(page, 'fields-refused');
  state.expectingRefusal = false;

  step('the API key is saved and the page says so');
  await page.fill('#f-public_key', cfg.publicValue);
  await page.fill('#f-secret_key', cfg.secretValue);
  await navigating(page, () => page.click('button[type=submit]'));
  await expectText(page, '[role=status]', `${cfg.fieldsName} is connected`);
  await look(page, 'fields-connected');

  step('Done goes back to the platform with the outcome');
  await Promise.all([
    page.waitForURL((u) => u.toString().startsWith(cfg.redirect), { waitUntil: 'load' }),
    page.click('#finish'),
  ]);
  const landed = new URL(page.url());
  if (landed.searchParams.get('status') !== 'success') fail(`landed on ${page.url()}`);
  const integrations = (landed.searchParams.get('integration') ?? '').split(',');
  if (!integrations.includes(cfg.oauth) || !integrations.includes(cfg.fields)) fail(`landed on ${page.url()}`);
  if (!(landed.searchParams.get('sessionId') ?? '').startsWith('cs_')) fail(`no sessionId in ${page.url()}`);

  step('the link no longer works once finished');
  state.expectingRefusal = true;
  const again = await page.goto(cfg.url);
  if (again.status() !== 404) fail(`a finished link answered ${again.status()}`);
  await expectText(page, 'h1', 'Link already used');
  await look(page, 'finished-link');
  state.expectingRefusal = false;
}

async function framing(browser) {
  step('a listed origin may frame the page');
  const page = await newPage(browser, { width: 1280, height: 900 });
  await page.goto(`${cfg.platform}/frame?src=${encodeURIComponent(cfg.otherUrl)}`);
  const framed = page.frameLocator('#connect');
  await framed.locator('h1').waitFor();
  const heading = await framed.locator('h1').innerText();
  if (!heading.includes('Connect your accounts')) fail(`the framed page shows ${heading}`);
  await page.screenshot({ path: `${cfg.screenshotDir}/framed-listed.png`, fullPage: true });

  step('any other origin may not');
  state.expectedConsole = [/frame-ancestors/, /Refused to frame/];
  await page.goto(`${cfg.stranger}/frame?src=${encodeURIComponent(cfg.otherUrl)}`);
  await page.waitForTimeout(1000);
  const frame = page.frames().find((f) => f !== page.mainFrame());
  // Chromium shows its own error page in a refused frame; the connect page's heading must not be there.
  const shown = frame ? await frame.locator('h1', { hasText: 'Connect your accounts' }).count() : 0;
  if (shown !== 0) fail(`a page of an unlisted origin framed the connect page (${frame.url()})`);
  await page.screenshot({ path: `${cfg.screenshotDir}/framed-unlisted.png`, fullPage: true });
  state.expectedConsole = [];
  await page.close();
}

async function popup(browser) {
  step('opened as a popup, the page tells its opener (at a listed origin) how it ended');
  const page = await newPage(browser, { width: 1280, height: 900 });
  await page.goto(`${cfg.platform}/opener?src=${encodeURIComponent(cfg.otherUrl)}`);
  const [win] = await Promise.all([page.waitForEvent('popup'), page.click('#open')]);
  await win.waitForLoadState('load');
  await look(win, 'popup');
  await Promise.all([win.waitForEvent('close'), win.click('button.secondary')]);
  await page.waitForFunction(() => document.getElementById('got').textContent.length > 0);
  const got = JSON.parse(await page.locator('#got').innerText());
  if (got.message.type !== 'tessera.connect' || got.message.status !== 'cancelled') fail(`the opener got ${JSON.stringify(got)}`);
  if (!got.message.sessionId.startsWith('cs_')) fail(`the opener got ${JSON.stringify(got)}`);
  if (got.origin !== cfg.base) fail(`the message came from ${got.origin}`);
  await page.close();
}

try {
  const browser = await checks.launch();
  try {
    const page = await newPage(browser, { width: 1280, height: 900 });
    await connectBoth(page);
    await page.close();
    step('a narrow screen');
    const narrow = await newPage(browser, { width: 360, height: 740 });
    await narrow.goto(cfg.otherUrl);
    await look(narrow, 'narrow');
    await narrow.close();
    await framing(browser);
    await popup(browser);
  } finally {
    await browser.close();
  }
  if (state.problems.length) fail(state.problems.join('\n'));
  console.log('ok');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  process.exit(1);
}
