/**
 * The API's types, from the generated `/openapi.json` types, under short
 * names; and the client's own answer types, written here because the
 * document cannot say what they add: an answer that carries a secret (a
 * tenant secret's value, a connect link, a webhook's signing secret) is
 * handed back with that value wrapped in `Secret`, so it prints as
 * `[SECRET]`. That wrapping is the client's, not the wire's; each is built
 * from its generated wire type (`SecretRead`, `CreatedConnectSession`,
 * `WebhookCreated`).
 */
import type { components } from "./generated/openapi.js";
import type { Secret } from "./secret.js";
type Schemas = components["schemas"];
export type ConnectSessionInput = Schemas["ConnectSessionInput"];
export type ConnectSessionView = Schemas["ConnectSessionView"];
export type CreatedConnectSession = Schemas["CreatedConnectSession"];
export type CredentialInput = Schemas["CredentialInput"];
export type CredentialView = Schemas["CredentialView"];
export type EndUser = Schemas["EndUser"];
export type ResolvedConnection = Schemas["ResolvedConnection"];
export type RevokedCredentials = Schemas["RevokedCredentials"];
export type SecretList = Schemas["SecretList"];
export type SecretRead = Schemas["SecretRead"];
export type SecretReadData = Schemas["SecretReadData"];
export type SecretReadValue = Schemas["SecretReadValue"];
export type SecretWritten = Schemas["SecretWritten"];
export type StoredCredentials = Schemas["StoredCredentials"];
export type ToolResult = Schemas["ToolResult"];
export type WebhookCreated = Schemas["WebhookCreated"];
export type WebhookDelivery = Schemas["WebhookDelivery"];
export type WebhookEventName = Schemas["WebhookEventName"];
export type WebhookView = Schemas["WebhookView"];
/** One kept version of a secret (metadata, never a value). */
export type SecretVersion = Schemas["SecretVersionView"];
/** `GET .../secrets/{path}?versions`: a secret's versions, never values. */
export type SecretMetadata = Schemas["SecretMetadataView"];
/**
 * One version of a tenant secret (`SecretRead` on the wire): `value` prints
 * as `[SECRET]`. `kind` is `"value"` for a single value (`SecretReadValue`)
 * and `"data"` for a map of fields (`SecretReadData`, what the
 * Vault-compatible API writes); `value` holds either.
 */
export interface SecretRecord {
    path: string;
    version: number;
    createdAt: string;
    kind: "value" | "data";
    value: Secret;
}
/**
 * A new connect session (`CreatedConnectSession` on the wire): send the
 * person's browser to `url.reveal()`. `url` and `token` are the link's
 * credential, shown by Tessera only in this answer, and print as `[SECRET]`.
 */
export interface ConnectSession {
    id: string;
    expiresAt: string;
    url: Secret<string>;
    token: Secret<string>;
}
/**
 * A new webhook and its signing secret (`WebhookCreated` on the wire;
 * `whsec_...`, shown by Tessera only in this answer): keep
 * `secret.revealText()` for `verifyWebhook`.
 */
export interface CreatedWebhook {
    webhook: WebhookView;
    secret: Secret<string>;
}
export {};
