// The resolved view, and its optional in-process cache.

import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import { MAX_RESOLVED_CACHE_SECONDS, NotFoundError, TesseraClient } from "@tessera/client";

import { admin, langfuse } from "./helpers.mjs";

const resolves = async (a, tenant) => (await a.audit("config.resolve")).filter((e) => e.tenantId === tenant);

test("the resolved view merges defaults, overrides and credentials", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const key = await langfuse(a, tenant, "sk_lf_ts_resolved_1");
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  const view = await tessera.getResolved(tenant, key);
  assert.deepEqual([view.tenantId, view.integration], [tenant, key]);
  assert.equal(view.get("base_url"), "https://cloud.langfuse.com");
  assert.equal(view.get("secret_key"), "sk_lf_ts_resolved_1");
  assert.deepEqual(view.reveal(), {
    base_url: "https://cloud.langfuse.com",
    public_key: "pk_lf_acme",
    secret_key: "sk_lf_ts_resolved_1",
  });
  assert.equal(view.secret("secret_key").reveal(), "sk_lf_ts_resolved_1");
  assert.deepEqual(view.keys().sort(), ["base_url", "public_key", "secret_key"]);
  for (const shown of [String(view), `${view}`, inspect(view), JSON.stringify({ view }), inspect({ nested: view })]) {
    assert.ok(!shown.includes("sk_lf_ts_resolved_1") && shown.includes("[SECRET]"), shown);
  }

  await tessera.storeCredentials(tenant, key, { accessToken: "lf_ts_access_1" });
  const withToken = await tessera.getResolved(tenant, key);
  assert.equal(withToken.get("accessToken"), "lf_ts_access_1");
  assert.equal(withToken.get("tokenType"), "bearer");

  await assert.rejects(tessera.getResolved(tenant, "no-such-integration"), (e) => e instanceof NotFoundError);
});

test("the cache serves a view for at most its maximum age", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const key = await langfuse(a, tenant, "sk_lf_ts_cached_1");
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token, resolvedCacheSeconds: 1.5 });
  assert.equal((await tessera.getResolved(tenant, key)).get("secret_key"), "sk_lf_ts_cached_1");
  const fetched = performance.now();
  await a.call("PUT", `/tenants/${tenant}/integrations/${key}/config`, { config: { secret_key: "sk_lf_ts_cached_2" } });

  // Within the maximum age the cached view is served (the change is not
  // seen), and Tessera is not asked: its audit log shows one read.
  const cached = await tessera.getResolved(tenant, key);
  if (performance.now() - fetched < 1500) {
    assert.equal(cached.get("secret_key"), "sk_lf_ts_cached_1");
    assert.equal((await resolves(a, tenant)).length, 1);
  }
  // ... unless asked for a fresh one; and never once the age is past.
  assert.equal((await tessera.getResolved(tenant, key, { fresh: true })).get("secret_key"), "sk_lf_ts_cached_2");
  await a.call("PUT", `/tenants/${tenant}/integrations/${key}/config`, { config: { secret_key: "sk_lf_ts_cached_3" } });
  await new Promise((r) => setTimeout(r, 1600));
  assert.equal((await tessera.getResolved(tenant, key)).get("secret_key"), "sk_lf_ts_cached_3");

  // Credentials written through the same client drop the entry at once.
  await tessera.storeCredentials(tenant, key, { accessToken: "lf_ts_access_cached" });
  assert.equal((await tessera.getResolved(tenant, key)).get("accessToken"), "lf_ts_access_cached");
  await tessera.revokeCredentials(tenant, key);
  assert.equal((await tessera.getResolved(tenant, key)).has("accessToken"), false);
  tessera.clearCache();
});

test("without the cache every read reaches Tessera", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const key = await langfuse(a, tenant, "sk_lf_ts_nocache_1");
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  assert.equal((await tessera.getResolved(tenant, key)).get("secret_key"), "sk_lf_ts_nocache_1");
  await a.call("PUT", `/tenants/${tenant}/integrations/${key}/config`, { config: { secret_key: "sk_lf_ts_nocache_2" } });
  assert.equal((await tessera.getResolved(tenant, key)).get("secret_key"), "sk_lf_ts_nocache_2");
  assert.equal((await resolves(a, tenant)).length, 2);
});

test("the cache age is bounded", () => {
  assert.equal(MAX_RESOLVED_CACHE_SECONDS, 60);
  assert.throws(() => new TesseraClient({ baseUrl: "http://127.0.0.1:1", token: "tsr_x", resolvedCacheSeconds: 61 }), RangeError);
  assert.throws(() => new TesseraClient({ baseUrl: "http://127.0.0.1:1", token: "tsr_x", resolvedCacheSeconds: -1 }), RangeError);
});
