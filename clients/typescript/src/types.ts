/**
 * The API's types, from the generated `/openapi.json` types, under short
 * names; and the few answers the document describes in words only (no
 * schema yet), typed here once from the server's own structs.
 */

import type { components } from "./generated/openapi.js";
import type { Secret } from "./secret.js";

type Schemas = components["schemas"];

export type ConnectSessionInput = Schemas["ConnectSessionInput"];
export type ConnectSessionView = Schemas["ConnectSessionView"];
export type CredentialInput = Schemas["CredentialInput"];
export type CredentialView = Schemas["CredentialView"];
export type EndUser = Schemas["EndUser"];
export type RevokedCredentials = Schemas["RevokedCredentials"];
export type SecretList = Schemas["SecretList"];
export type SecretWritten = Schemas["SecretWritten"];
export type StoredCredentials = Schemas["StoredCredentials"];
export type ToolResult = Schemas["ToolResult"];
export type WebhookEventName = Schemas["WebhookEventName"];
export type WebhookView = Schemas["WebhookView"];

/** One kept version of a secret (metadata, never a value). Not in the document yet. */
export interface SecretVersion {
  version: number;
  createdAt: string;
  createdBy: string;
  deletedAt: string | null;
  destroyed: boolean;
}

/** `GET .../secrets/{path}?versions`: a secret's versions, never values. Not in the document yet. */
export interface SecretMetadata {
  path: string;
  currentVersion: number;
  maxVersions: number;
  createdAt: string;
  updatedAt: string;
  rotateAfterDays: number | null;
  versions: SecretVersion[];
}

/**
 * One version of a tenant secret: `value` prints as `[SECRET]`. `kind` is
 * `"value"` for a single value and `"data"` for a map of fields (what the
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
 * A new connect session: send the person's browser to `url.reveal()`. `url`
 * and `token` are the link's credential, shown by Tessera only in this
 * answer, and print as `[SECRET]`.
 */
export interface ConnectSession {
  id: string;
  expiresAt: string;
  url: Secret<string>;
  token: Secret<string>;
}

/**
 * A new webhook and its signing secret (`whsec_...`, shown by Tessera only
 * in this answer): keep `secret.revealText()` for `verifyWebhook`.
 */
export interface CreatedWebhook {
  webhook: WebhookView;
  secret: Secret<string>;
}
