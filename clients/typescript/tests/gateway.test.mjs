// The credentials store, tool invocation on a real MCP server, and proxied
// calls to an integration's API (a stand-in on loopback).

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, NotFoundError, TesseraClient } from "@tessera/client";

import { admin, requiredEnv, standIn } from "./helpers.mjs";

test("credentials are stored, shown as metadata only and revoked", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const github = await a.integration({ category: "code" });
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  const stored = await tessera.storeCredentials(tenant, github, {
    accessToken: "ghp_ts_access_1",
    refreshToken: "ghr_ts_refresh_1",
    expiresIn: 3600,
    scopes: ["repo", "user"],
  });
  assert.equal(stored.success, true);
  assert.deepEqual([stored.tenantId, stored.integration], [tenant, github]);
  assert.ok(stored.expiresAt);

  const meta = await tessera.getCredentials(tenant, github);
  assert.equal(meta.hasCredentials, true);
  assert.equal(meta.hasRefreshToken, true);
  assert.deepEqual(meta.scopes, ["repo", "user"]);
  assert.ok(!JSON.stringify(meta).includes("ghp_ts_access_1") && !JSON.stringify(meta).includes("ghr_ts_refresh_1"));
  assert.equal((await tessera.getResolved(tenant, github)).get("accessToken"), "ghp_ts_access_1");

  assert.equal((await tessera.revokeCredentials(tenant, github)).success, true);
  await assert.rejects(tessera.getCredentials(tenant, github), (e) => e instanceof NotFoundError && e.code === "credentials_not_found");
});

test("a tool runs on the MCP server with the tenant's token", async (t) => {
  const a = admin(t);
  const mcpUrl = requiredEnv(t, "TESSERA_TEST_MCP_URL");
  if (!a || !mcpUrl) return;
  const tenant = await a.tenant();
  const everything = await a.integration({ mcp: { url: mcpUrl } });
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  await tessera.storeCredentials(tenant, everything, { accessToken: "mcp_ts_token" });
  const result = await tessera.invokeTool(tenant, `${everything}.echo`, { message: "roadmap" });
  assert.deepEqual([result.toolId, result.integration, result.tenantId], [`${everything}.echo`, everything, tenant]);
  assert.equal(result.result.content[0].text, "Echo: roadmap");
  const bare = await tessera.invokeTool(tenant, "echo", { message: "two" }, { integration: everything });
  assert.equal(bare.result.content[0].text, "Echo: two");
  await assert.rejects(tessera.invokeTool(tenant, `${everything}.no-such-tool`), (e) => e instanceof NotFoundError && e.code === "unknown_tool");

  const plain = await a.integration({});
  await a.call("PUT", `/tenants/${tenant}/integrations/${plain}/config`, { config: {} });
  await assert.rejects(tessera.invokeTool(tenant, `${plain}.echo`), (e) => e instanceof ConflictError && e.code === "mcp_not_configured");
});

test("a proxied call reaches the API with the tenant's credential injected", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const upstream = await standIn(t, [], { status: 200, body: '{"traces": []}' });
  const crm = await a.integration({
    configSchema: [{ key: "api_key", type: "secret" }],
    proxy: { baseUrl: `${upstream.url}/api`, auth: { type: "bearer", from: "config:api_key" } },
  });
  await a.call("PUT", `/tenants/${tenant}/integrations/${crm}/config`, { config: { api_key: "crm_ts_key_77" } });
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });

  const r = await tessera.proxy(tenant, crm, "traces", { query: { limit: "5" } });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { traces: [] });
  const seen = upstream.seen.at(-1);
  assert.deepEqual([seen.method, seen.path], ["GET", "/api/traces?limit=5"]);
  assert.equal(seen.headers.authorization, "Bearer crm_ts_key_77");
  assert.equal(seen.headers["x-tenant-id"], undefined);

  const posted = await tessera.proxy(tenant, crm, "/items", {
    method: "POST",
    headers: { "content-type": "application/json", Authorization: "Bearer x", "X-Trace": "7" },
    body: JSON.stringify({ name: "x" }),
  });
  assert.equal(posted.status, 200, "the caller's Authorization never replaces the client's token");
  assert.equal(upstream.seen.at(-1).method, "POST");
  assert.deepEqual(JSON.parse(upstream.seen.at(-1).body), { name: "x" });
  assert.equal(upstream.seen.at(-1).headers["x-trace"], "7");
  assert.equal(upstream.seen.at(-1).headers.authorization, "Bearer crm_ts_key_77");

  // Tessera's own refusal comes back as an answer too, with its error body.
  const refused = await tessera.proxy(tenant, crm, "a%2Fb");
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.code, "invalid_proxy_path");
  // A dot segment would be resolved by URL parsing before Tessera sees it (leaving /proxy/): refused here.
  for (const escape of ["../../api-keys", "a/%2e%2E/b", "a\\..\\b", "./x"]) {
    await assert.rejects(tessera.proxy(tenant, crm, escape), RangeError, escape);
  }

  const own = new TesseraClient({ baseUrl: a.url, token: await a.key("tenant_service", tenant) });
  assert.equal((await own.proxy(null, crm, "traces")).status, 200, "a tenant key names no tenant");
  assert.equal((await own.proxy(tenant, crm, "traces")).status, 200);
});
