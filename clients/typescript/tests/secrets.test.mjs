// Tenant secrets: values that print as [SECRET], versions, check-and-set,
// delete/undelete/destroy/rollback, listing.

import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import { ConflictError, NotFoundError, Secret, TesseraClient } from "@tessera/client";

import { admin } from "./helpers.mjs";

test("a written secret reads back and never prints itself", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  const written = await tessera.putTenantSecret(tenant, "stripe/STRIPE_SECRET_KEY", "sk_live_ts_4242");
  assert.equal(written.version, 1);
  assert.equal(written.path, "stripe/STRIPE_SECRET_KEY");

  const secret = await tessera.getTenantSecret(tenant, "stripe/STRIPE_SECRET_KEY");
  assert.ok(secret instanceof Secret);
  assert.equal(secret.reveal(), "sk_live_ts_4242");
  assert.equal(secret.revealText(), "sk_live_ts_4242");
  for (const shown of [String(secret), `${secret}`, inspect(secret), inspect({ secret }), JSON.stringify({ secret })]) {
    assert.ok(!shown.includes("sk_live_ts_4242") && shown.includes("[SECRET]"), shown);
  }
  assert.deepEqual(Object.keys(secret), [], "no enumerable field holds the value");

  const record = await tessera.readSecret(tenant, "stripe/STRIPE_SECRET_KEY");
  assert.deepEqual([record.path, record.version, record.kind], ["stripe/STRIPE_SECRET_KEY", 1, "value"]);
  assert.equal(record.value.reveal(), "sk_live_ts_4242");
  assert.ok(!JSON.stringify(record).includes("sk_live_ts_4242"));
  assert.ok(!inspect(record).includes("sk_live_ts_4242"));
});

test("check-and-set writes only over the version named", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  assert.equal((await tessera.putTenantSecret(tenant, "sendgrid/API_KEY", "SG.one", { cas: 0 })).version, 1);
  await assert.rejects(tessera.putTenantSecret(tenant, "sendgrid/API_KEY", "SG.lost", { cas: 0 }), (e) => {
    assert.ok(e instanceof ConflictError);
    assert.equal(e.status, 409);
    assert.equal(e.code, "cas_mismatch");
    assert.ok(e.requestId, "the X-Request-Id the server logged and audited");
    return true;
  });
  assert.equal((await tessera.putTenantSecret(tenant, "sendgrid/API_KEY", "SG.two", { cas: 1 })).version, 2);
  await assert.rejects(tessera.putTenantSecret(tenant, "sendgrid/API_KEY", "SG.stale", { cas: 1 }), {
    code: "cas_mismatch",
  });
  assert.equal((await tessera.getTenantSecret(tenant, "sendgrid/API_KEY")).reveal(), "SG.two");
  assert.equal((await tessera.getTenantSecret(tenant, "sendgrid/API_KEY", { version: 1 })).reveal(), "SG.one");
});

test("versions, delete, undelete, destroy and rollback", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  for (const value of ["v-one", "v-two", "v-three"]) {
    await tessera.putTenantSecret(tenant, "app/TOKEN", value, { rotateAfterDays: 90 });
  }
  const meta = await tessera.secretVersions(tenant, "app/TOKEN");
  assert.equal(meta.currentVersion, 3);
  assert.equal(meta.rotateAfterDays, 90);
  assert.deepEqual(
    meta.versions.map((v) => v.version),
    [1, 2, 3],
  );
  assert.ok(!JSON.stringify(meta).includes("v-one"));

  await tessera.deleteSecret(tenant, "app/TOKEN");
  assert.equal(await tessera.getTenantSecret(tenant, "app/TOKEN"), undefined, "the newest version is deleted");
  await assert.rejects(tessera.readSecret(tenant, "app/TOKEN"), (e) => e instanceof NotFoundError && e.code === "version_deleted");
  await tessera.undeleteSecret(tenant, "app/TOKEN", [3]);
  assert.equal((await tessera.getTenantSecret(tenant, "app/TOKEN")).reveal(), "v-three");

  await tessera.destroySecretVersions(tenant, "app/TOKEN", [1]);
  assert.equal(await tessera.getTenantSecret(tenant, "app/TOKEN", { version: 1 }), undefined);
  assert.equal((await tessera.secretVersions(tenant, "app/TOKEN")).versions[0].destroyed, true);

  assert.equal((await tessera.rollbackSecret(tenant, "app/TOKEN", 2)).version, 4);
  assert.equal((await tessera.getTenantSecret(tenant, "app/TOKEN")).reveal(), "v-two");

  await tessera.deleteSecret(tenant, "app/TOKEN", { versions: [2, 4] });
  assert.deepEqual(
    (await tessera.secretVersions(tenant, "app/TOKEN")).versions.map((v) => v.deletedAt !== null),
    [false, true, false, true],
  );
});

test("a map of fields is a data secret and listing shows paths only", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  await tessera.putTenantSecretData(tenant, "stripe/api", { key: "sk_live_map", webhook: "whsec_map" });
  await tessera.putTenantSecret(tenant, "stripe/other", "x");
  await tessera.putTenantSecret(tenant, "sendgrid/key", "y");
  const record = await tessera.readSecret(tenant, "stripe/api");
  assert.equal(record.kind, "data");
  assert.deepEqual(record.value.reveal(), { key: "sk_live_map", webhook: "whsec_map" });
  assert.throws(() => record.value.revealText(), TypeError);

  assert.deepEqual(await tessera.listSecrets(tenant, "stripe/"), { tenantId: tenant, paths: ["stripe/api", "stripe/other"] });
  assert.ok(!JSON.stringify(await tessera.listSecrets(tenant)).includes("sk_live_map"));
  await assert.rejects(() => tessera.putTenantSecret(tenant, "stripe/api", null), RangeError);
});

test("a missing secret is undefined but a missing tenant throws", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  assert.equal(await tessera.getTenantSecret(tenant, "NOT_THERE"), undefined);
  await assert.rejects(tessera.readSecret(tenant, "NOT_THERE"), { name: "NotFoundError", code: "secret_not_found" });
  await assert.rejects(tessera.getTenantSecret("no-such-tenant-here", "STRIPE_SECRET_KEY"), {
    name: "NotFoundError",
    code: "tenant_not_found",
  });
  await assert.rejects(() => tessera.getTenantSecret(tenant, "../api-keys"), RangeError);
});

test("a tenant key reads its own tenant and another tenant is not found", async (t) => {
  const a = admin(t);
  if (!a) return;
  const [tenant, other] = [await a.tenant(), await a.tenant()];
  const root = new TesseraClient({ baseUrl: a.url, token: a.token });
  await root.putTenantSecret(tenant, "STRIPE_SECRET_KEY", "sk_own");
  await root.putTenantSecret(other, "STRIPE_SECRET_KEY", "sk_other");
  const service = new TesseraClient({ baseUrl: a.url, token: await a.key("tenant_service", tenant) });
  assert.equal((await service.getTenantSecret(tenant, "STRIPE_SECRET_KEY")).reveal(), "sk_own");
  await assert.rejects(service.getTenantSecret(other, "STRIPE_SECRET_KEY"), { code: "tenant_not_found" });
});
