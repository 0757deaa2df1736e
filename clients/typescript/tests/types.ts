// Compiled, never run (`tsc -p tests/tsconfig.json`, by tests/api/clients.rs
// against the installed package): the types a TypeScript user gets hold.

import {
  ApiError,
  ConflictError,
  Secret,
  TesseraClient,
  verifyWebhook,
  type CredentialInput,
  type ErrorCode,
  type ResolvedView,
  type SecretWritten,
  type SecretMetadata,
  type WebhookDelivery,
  type WebhookEvent,
  type WebhookEventName,
} from "@tessera/client";

const tessera = new TesseraClient({ baseUrl: "http://127.0.0.1:7300", token: "tsr_...", resolvedCacheSeconds: 5 });

// The application's own helper, on the client.
export async function getTenantSecret(companySubdomain: string, secretKey: string): Promise<string | undefined> {
  const secret: Secret | undefined = await tessera.getTenantSecret(companySubdomain, secretKey);
  return secret?.revealText();
}

export async function rotate(tenant: string, key: string, value: string, seen: number): Promise<number | null> {
  try {
    const written: SecretWritten = await tessera.putTenantSecret(tenant, key, value, { cas: seen });
    return written.version;
  } catch (e) {
    if (e instanceof ConflictError && e.code === "cas_mismatch") return null;
    throw e;
  }
}

export async function langfuseKey(tenant: string): Promise<string> {
  const view: ResolvedView = await tessera.getResolved(tenant, "langfuse");
  const value = view.get("secret_key");
  if (typeof value !== "string") throw new Error("no secret_key");
  return value;
}

export const code: ErrorCode = "tenant_not_found";
// @ts-expect-error: not a code the API answers
export const typo: ErrorCode = "tenant_missing";

export const credentials: CredentialInput = { accessToken: "ghp_...", expiresIn: 3600, scopes: ["repo"] };
// @ts-expect-error: the API's field is accessToken
export const wrong: CredentialInput = { access_token: "ghp_..." };

export const events: WebhookEventName[] = ["credential.stored", "secret.rotation_due"];
// @ts-expect-error: not an event Tessera sends
export const noEvent: WebhookEventName = "secret.read";

export async function receive(body: Uint8Array, signature: string | null, secret: string): Promise<string> {
  const event: WebhookEvent = await verifyWebhook(secret, body, signature);
  // The body is the document's WebhookDelivery, its event one of the names.
  const delivery: WebhookDelivery = event;
  const name: WebhookEventName = delivery.event;
  return `${name} ${event.tenantId}`;
}

export async function versions(tenant: string, path: string): Promise<(string | null)[]> {
  const meta: SecretMetadata = await tessera.secretVersions(tenant, path);
  return meta.versions.map((v) => v.deletedAt);
}

export function describe(e: unknown): string {
  return e instanceof ApiError ? `${e.status} ${e.code ?? "?"} ${e.field ?? ""}` : String(e);
}
