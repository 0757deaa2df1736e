// Hosted Connect sessions, and webhook deliveries from Tessera checked with
// verifyWebhook.

import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import { NotFoundError, Secret, TesseraClient, verifyWebhook, WebhookVerificationError } from "@tessera/client";

import { admin, standIn } from "./helpers.mjs";

test("a connect session is made, shown once, read and ended", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const github = await a.integration({});
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  const session = await tessera.createConnectSession({
    tenantId: tenant,
    integrations: [github],
    expiresIn: 600,
    endUser: { id: "user-42", email: "ada@example.com" },
  });
  assert.ok(session.id.startsWith("cs_"));
  const url = session.url.reveal();
  assert.ok(url.startsWith(`${a.url}/connect/`) && url.includes(session.token.reveal()));
  for (const shown of [inspect(session), JSON.stringify(session)]) {
    assert.ok(!shown.includes(session.token.reveal()) && shown.includes("[SECRET]"), shown);
  }

  const view = await tessera.getConnectSession(session.id);
  assert.equal(view.status, "pending");
  assert.equal(view.tenantId, tenant);
  assert.deepEqual(view.integrations, [github]);
  assert.deepEqual(view.endUser, { id: "user-42", email: "ada@example.com" });

  await tessera.endConnectSession(session.id);
  await assert.rejects(tessera.getConnectSession(session.id), (e) => e instanceof NotFoundError && e.code === "connect_session_not_found");
});

test("a real delivery verifies and a tampered or stale one does not", async (t) => {
  const a = admin(t);
  if (!a) return;
  const tenant = await a.tenant();
  const receiver = await standIn(t);
  const crm = await a.integration({});
  const tessera = new TesseraClient({ baseUrl: a.url, token: a.token });
  const created = await tessera.createWebhook(tenant, `${receiver.url}/hooks/tessera`, ["credential.stored"]);
  const secret = created.secret;
  assert.ok(secret.revealText().startsWith("whsec_"));
  assert.ok(!JSON.stringify(created).includes("whsec_") && !inspect(created).includes("whsec_"));
  assert.deepEqual(created.webhook.events, ["credential.stored"]);
  await tessera.storeCredentials(tenant, crm, { accessToken: "crm_ts_webhook_token" });

  const got = await receiver.waitFor((s) => s.headers["tessera-event"] === "credential.stored");
  const signature = got.headers["tessera-signature"];
  const event = await verifyWebhook(secret, got.body, signature);
  assert.equal(event.event, "credential.stored");
  assert.equal(event.tenantId, tenant);
  assert.equal(event.id, got.headers["tessera-delivery"]);
  assert.equal(event.data.integration, crm);
  assert.equal((await verifyWebhook(secret.revealText(), got.body.toString("utf8"), signature)).id, event.id);
  assert.equal((await verifyWebhook(secret, new Uint8Array(got.body).buffer, signature)).id, event.id);

  const ts = Number(signature.split(",")[0].slice(2));
  const refused = (re) => (e) => e instanceof WebhookVerificationError && re.test(e.message);
  const tampered = Buffer.from(got.body.toString("utf8").replace("credential.stored", "credential.revoked"));
  await assert.rejects(verifyWebhook(secret, tampered, signature), refused(/does not match/));
  await assert.rejects(verifyWebhook("whsec_not_the_secret", got.body, signature), refused(/does not match/));
  await assert.rejects(verifyWebhook(secret, got.body, signature, { now: ts + 301 }), refused(/from now/));
  assert.equal((await verifyWebhook(secret, got.body, signature, { now: ts + 299 })).id, event.id);
  await assert.rejects(verifyWebhook(secret, got.body, `t=${ts + 1},${signature.split(",")[1]}`), refused(/does not match/));
  for (const bad of [null, undefined, "", "v1=abc", `t=${ts}`, "t=x,v1=00"]) {
    await assert.rejects(verifyWebhook(secret, got.body, bad), WebhookVerificationError);
  }
  await tessera.deleteWebhook(tenant, created.webhook.id);
});

test("the signature is HMAC-SHA256 over timestamp and body", async () => {
  // The vector of Tessera's own test (tessera-core's webhook.rs): printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
  const header = "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91";
  assert.deepEqual(await verifyWebhook(new Secret("whsec_test"), "{}", header, { now: 1_700_000_000 }), {});
  await assert.rejects(verifyWebhook("whsec_test", '{"a":1}', header, { now: 1_700_000_000 }), /does not match/);
  await assert.rejects(verifyWebhook("whsec_test", "{}", header), /from now/);
});
