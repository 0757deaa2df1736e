// What every browser test of Tessera's pages checks, shared by console.mjs
// and connect.mjs: browser console errors, CSP violations, plaintext secrets
// in any response or URL, the security headers of every HTML answer,
// axe-core serious/critical violations, horizontal scrolling, and a
// screenshot of each page looked at.

import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export function fail(message) {
  throw new Error(message);
}

export function step(name) {
  console.log(`step: ${name}`);
}

// cfg: base, secretValues, screenshotDir, chromium.
// opts.secretAllowed(resp): whether this answer may hold a secret (the console's Reveal).
// opts.frameable(url): whether this page may be framed (no X-Frame-Options: DENY expected).
export function createChecks(cfg, opts = {}) {
  mkdirSync(cfg.screenshotDir, { recursive: true });
  const secretAllowed = opts.secretAllowed ?? (() => false);
  const frameable = opts.frameable ?? (() => false);
  const state = {
    problems: [],
    // Chromium logs "Failed to load resource" for every page answered 4xx;
    // while a step expects such an answer, that one message is not a problem.
    expectingRefusal: false,
    // Messages a step expects on the console (a refused frame, say).
    expectedConsole: [],
  };

  async function launch() {
    return chromium.launch({
      executablePath: cfg.chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
    });
  }

  function watch(page, context) {
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      if (state.expectingRefusal && /^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) return;
      if (state.expectedConsole.some((re) => re.test(msg.text()))) return;
      const where = msg.location()?.url ? ` (${msg.location().url})` : '';
      state.problems.push(`console error on ${page.url()}: ${msg.text()}${where}`);
    });
    page.on('pageerror', (err) => state.problems.push(`page error on ${page.url()}: ${err.message}`));
    page.on('response', async (resp) => {
      const allowed = secretAllowed(resp); // decided when the answer arrives, not after its body is read
      const type = resp.headers()['content-type'] ?? '';
      if (!resp.url().startsWith(cfg.base)) return;
      let body = '';
      try {
        body = await resp.text();
      } catch {
        return; // redirects have no body
      }
      for (const secret of cfg.secretValues) {
        if (body.includes(secret) && !allowed) {
          state.problems.push(`plaintext secret in the response of ${resp.request().method()} ${resp.url()} (${type})`);
        }
        if (resp.url().includes(secret)) state.problems.push(`plaintext secret in a URL: ${resp.url()}`);
      }
      if (type.startsWith('text/html')) {
        const csp = resp.headers()['content-security-policy'] ?? '';
        if (!csp.includes("default-src 'self'")) state.problems.push(`no CSP on ${resp.url()}`);
        if (!frameable(resp.url()) && resp.headers()['x-frame-options'] !== 'DENY') {
          state.problems.push(`no X-Frame-Options on ${resp.url()}`);
        }
      }
    });
    void context;
  }

  async function newPage(browser, viewport) {
    const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'Europe/Paris' });
    // CSP violations are reported to the page as events; count them.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
      });
    });
    context.on('page', (p) => watch(p, context));
    const page = await context.newPage();
    return page;
  }

  // Checks what a person sees on the current page, and saves a screenshot.
  async function look(page, name) {
    await page.waitForLoadState('load');
    await page.screenshot({ path: `${cfg.screenshotDir}/${name}.png`, fullPage: true });
    if (state.problems.length) fail(state.problems.join('\n'));
    await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
    );
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    if (serious.length) {
      fail(`axe on ${name}: ${serious.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; ')}`);
    }
    const width = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    if (width[0] > width[1]) {
      const wide = await page.evaluate((limit) => [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > limit)
        .slice(0, 5)
        .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + el.className : ''}`), width[1]);
      fail(`${name} scrolls sideways: ${width[0]} px of content in ${width[1]} px (${wide.join(', ')})`);
    }
  }

  async function expectText(page, selector, text) {
    const content = await page.locator(selector).first().innerText();
    if (!content.includes(text)) fail(`expected ${JSON.stringify(text)} in ${selector} on ${page.url()}, found ${JSON.stringify(content.slice(0, 300))}`);
  }

  // Does something that navigates (a click that submits a form, a key press)
  // and waits for the new page, even when its URL is the same as the old one.
  async function navigating(page, action) {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), action()]);
  }

  return { state, launch, newPage, look, expectText, navigating };
}
