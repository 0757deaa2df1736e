// Typed errors with the API's codes (from the real server), and retries,
// backoff and timeouts (against stand-ins that answer 429, 503 or slowly).

import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import {
  ApiError,
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  RequestTimeoutError,
  TesseraClient,
  TransportError,
  UnavailableError,
} from "@tessera/client";

import { admin, requiredEnv, standIn } from "./helpers.mjs";

const OK = { status: 200, body: '{"tenantId": "acme", "integration": "crm", "config": {"k": "v"}}' };
const LIMITED = { status: 429, body: '{"error": {"code": "rate_limited", "message": "slow down"}}', headers: { "retry-after": "1" } };
const DOWN = { status: 503, body: '{"error": {"code": "store_unavailable", "message": "the store is down"}}' };

test("error answers carry the API's code, message and field", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const stranger = new TesseraClient({ baseUrl: a.url, token: "tsr_not_a_key_at_all" });
  await assert.rejects(stranger.listSecrets(tenant), (e) => e instanceof AuthenticationError && e.status === 401 && e.code === "unauthenticated");

  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  await assert.rejects(tessera.readSecret(tenant, "stripe/key", { version: -1 }), (e) => {
    assert.ok(e instanceof BadRequestError);
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_query", "version"]);
    assert.ok(!e.message.includes("-1"));
    return true;
  });
  await assert.rejects(tessera.getCredentials(tenant, "no-such-integration"), (e) => e instanceof NotFoundError && e instanceof ApiError && !!e.requestId);

  const service = new TesseraClient({ baseUrl: a.url, token: await a.key("tenant_service", tenant) });
  await assert.rejects(service.putTenantSecret(tenant, "stripe/key", "sk_denied"), (e) => e instanceof PermissionDeniedError && e.code === "forbidden");
  // An auditor reads the audit log, never a secret value: to it the tenant's secrets are not there.
  const auditor = new TesseraClient({ baseUrl: a.url, token: await a.key("auditor", null) });
  await assert.rejects(auditor.getTenantSecret(tenant, "stripe/key"), (e) => e instanceof NotFoundError && e.code === "tenant_not_found");
});

test("Tessera's own rate limit is waited out", async (t) => {
  const a = admin(t);
  // A second server of the suite's, limited to 1 request a second per caller (bursts of 1).
  const url = requiredEnv(t, "TESSERA_TEST_LIMITED_URL");
  if (!a || !url) return;
  const tessera = new TesseraClient({ baseUrl: url, token: a.token });
  const started = performance.now();
  for (let i = 0; i < 3; i++) {
    await assert.rejects(tessera.getTenantSecret("no-tenant", "KEY"), (e) => e instanceof NotFoundError && e.code === "tenant_not_found");
  }
  assert.ok(performance.now() - started >= 1500, "three calls at one a second");
  const impatient = new TesseraClient({ baseUrl: url, token: a.token, maxRetries: 0 });
  await assert.rejects(impatient.getTenantSecret("no-tenant", "KEY"), (e) => {
    assert.ok(e instanceof RateLimitedError);
    assert.deepEqual([e.status, e.code, e.retryAfter], [429, "rate_limited", 1]);
    return true;
  });
});

test("429 is retried after Retry-After with the same request id", async (t) => {
  const server = await standIn(t, [LIMITED], OK);
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in" });
  const started = performance.now();
  assert.equal((await tessera.getResolved("acme", "crm")).get("k"), "v");
  assert.equal(server.seen.length, 2);
  assert.ok(server.seen[1].at - server.seen[0].at >= 950, "waited what Retry-After asked");
  assert.ok(performance.now() - started < 20_000, "not the 30 s a backoff could reach");
  assert.equal(new Set(server.seen.map((s) => s.headers["x-request-id"])).size, 1, "one request id for every try");
  assert.equal(server.seen[0].headers.authorization, "Bearer tsr_stand_in");
});

test("503 is retried with backoff and an HTTP-date Retry-After is honoured", async (t) => {
  const server = await standIn(t, [DOWN, DOWN], OK);
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in" });
  assert.equal((await tessera.getResolved("acme", "crm")).get("k"), "v");
  assert.equal(server.seen.length, 3);
  const first = server.seen[1].at - server.seen[0].at;
  const second = server.seen[2].at - server.seen[1].at;
  // 0.5 s doubling, jittered over its upper half: at least 0.25 s, then 0.5 s (never the 30 s cap).
  assert.ok(first >= 200 && second >= 450 && first + second < 20_000, `${first} ${second}`);

  const when = new Date(Date.now() + 2000).toUTCString();
  const dated = await standIn(t, [{ ...DOWN, headers: { "retry-after": when } }], OK);
  const client = new TesseraClient({ baseUrl: dated.url, token: "tsr_stand_in" });
  assert.equal((await client.getResolved("acme", "crm")).get("k"), "v");
  assert.ok(dated.seen[1].at - dated.seen[0].at >= 900);
});

test("retries stop after maxRetries and the typed error is thrown", async (t) => {
  const server = await standIn(t, [], LIMITED);
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in", maxRetries: 1 });
  await assert.rejects(tessera.getTenantSecret("acme", "STRIPE_SECRET_KEY"), (e) => e instanceof RateLimitedError && e.code === "rate_limited" && e.retryAfter === 1);
  assert.equal(server.seen.length, 2);

  const longWait = await standIn(t, [], { ...DOWN, headers: { "retry-after": "3600" } });
  const client = new TesseraClient({ baseUrl: longWait.url, token: "tsr_stand_in" });
  await assert.rejects(client.getTenantSecret("acme", "STRIPE_SECRET_KEY"), (e) => e instanceof UnavailableError && e.code === "store_unavailable" && e.retryAfter === 3600);
  assert.equal(longWait.seen.length, 1, "an hour is not waited for: the error is thrown at once");
});

test("a proxied POST is not retried but a proxied GET is", async (t) => {
  const server = await standIn(t, [], { status: 429, body: "upstream says slow down", headers: { "retry-after": "0" } });
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in", maxRetries: 2 });
  const posted = await tessera.proxy("acme", "crm", "items", { method: "POST", body: "{}" });
  assert.equal(posted.status, 429);
  assert.equal(await posted.text(), "upstream says slow down");
  assert.equal(server.seen.length, 1);
  assert.equal((await tessera.proxy("acme", "crm", "items")).status, 429);
  assert.equal(server.seen.length, 4);
  assert.equal(server.seen[0].headers["x-tenant-id"], "acme");
});

test("a slow answer times out, and a caller's signal aborts", async (t) => {
  const server = await standIn(t, [], { ...OK, delay: 2000 });
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in", timeoutMs: 300 });
  await assert.rejects(tessera.getResolved("acme", "crm"), RequestTimeoutError);
  assert.equal(server.seen.length, 1, "a timeout may have reached the server: not retried");

  const patient = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in" });
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("the caller gave up")), 100);
  await assert.rejects(patient.getResolved("acme", "crm", { signal: controller.signal }), /the caller gave up/);
});

test("a server that is not there is a transport error after the retries", async (t) => {
  const server = await standIn(t);
  await server.close();
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in", maxRetries: 2 });
  await assert.rejects(tessera.listSecrets("acme"), (e) => e instanceof TransportError && !(e instanceof ApiError) && !String(e).includes("tsr_stand_in"));
  assert.ok(!inspect(tessera).includes("tsr_stand_in") && !JSON.stringify(tessera).includes("tsr_stand_in"));
});

test("an answer without Tessera's error body still throws typed", async (t) => {
  const server = await standIn(t, [], { status: 404, body: "<html>not found</html>", headers: { "content-type": "text/html" } });
  const tessera = new TesseraClient({ baseUrl: server.url, token: "tsr_stand_in" });
  await assert.rejects(tessera.listSecrets("acme"), (e) => e instanceof NotFoundError && e.code === null && e.status === 404);
});
