// The suite runs against a real Tessera (TESSERA_TEST_URL, with its admin
// token TESSERA_TEST_ROOT_TOKEN): tests/api/clients.rs in the repository
// starts the binary, installs this package with `npm install` into a fresh
// project and runs `node --test` there. The setup the client does not cover
// (tenants, the integration registry, configs, keys) is done here with plain
// fetch as an admin. Small HTTP servers of the test's own stand in for what
// Tessera talks to and for a Tessera that answers 429, 503 or too slowly.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import http from "node:http";

/** An environment variable the suite needs: the test skips without it, and fails in CI. */
export function requiredEnv(t, name) {
  const value = process.env[name];
  if (!value) {
    const reason = `${name} is not set (tests/api/clients.rs sets it when it runs this suite)`;
    if (process.env.CI === "true") assert.fail(reason);
    t.skip(reason);
  }
  return value;
}

/** Root access to the server under test, for setup; null when not configured. */
export function admin(t) {
  const url = requiredEnv(t, "TESSERA_TEST_URL");
  const token = requiredEnv(t, "TESSERA_TEST_ROOT_TOKEN");
  if (!url || !token) return null;
  const call = async (method, path, body, expect = 200) => {
    const r = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    assert.equal(r.status, expect, `${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    url,
    token,
    call,
    async tenant() {
      const id = `t-${randomUUID().replaceAll("-", "").slice(0, 12)}`;
      await call("POST", "/tenants", { id, name: `Tenant ${id}` }, 201);
      return id;
    },
    async integration(body) {
      const key = `i-${randomUUID().replaceAll("-", "").slice(0, 12)}`;
      await call("POST", "/integrations", { key, name: `Integration ${key}`, ...body }, 201);
      return key;
    },
    async key(role, tenantId) {
      return (await call("POST", "/api-keys", { name: role, role, tenantId }, 201)).key;
    },
    async audit(action) {
      return (await call("GET", `/audit?action=${action}&limit=1000`)).events;
    },
  };
}

/**
 * An HTTP server on loopback that records every request and answers from a
 * script (then `fallback`): answers are {status, body, headers, delay}.
 */
export async function standIn(t, script = [], fallback = {}) {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks), at: performance.now() });
      const a = { status: 200, body: '{"ok": true}', headers: { "content-type": "application/json" }, delay: 0, ...(script.shift() ?? fallback) };
      setTimeout(() => {
        res.writeHead(a.status, a.headers);
        res.end(a.body);
      }, a.delay);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.after(close);
  return {
    url,
    seen,
    close,
    async waitFor(predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const hit = seen.find(predicate);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail(`no matching request within ${timeoutMs} ms; seen: ${seen.map((s) => `${s.method} ${s.path}`)}`);
    },
  };
}

/** An integration like Langfuse: a default base URL, the tenant's own keys. */
export async function langfuse(a, tenant, secretKey) {
  const key = await a.integration({
    configSchema: [
      { key: "base_url", type: "string", required: true },
      { key: "public_key", type: "string" },
      { key: "secret_key", type: "secret", required: true },
    ],
  });
  await a.call("PUT", `/integrations/${key}/defaults`, { config: { base_url: "https://cloud.langfuse.com" } });
  await a.call("PUT", `/tenants/${tenant}/integrations/${key}/config`, {
    config: { public_key: "pk_lf_acme", secret_key: secretKey },
  });
  return key;
}
