/**
 * `TesseraClient`: every call of the API the application side needs, on the
 * global `fetch`, with retries, timeouts and typed errors.
 */
import { ResolvedView, Secret, type JsonValue } from "./secret.js";
import type { ConnectSession, ConnectSessionInput, ConnectSessionView, CreatedWebhook, CredentialInput, CredentialView, RevokedCredentials, SecretList, SecretMetadata, SecretRecord, SecretWritten, StoredCredentials, ToolResult, WebhookEventName } from "./types.js";
export declare const VERSION = "0.1.0";
export interface TesseraClientOptions {
    /** Where Tessera listens, e.g. `http://127.0.0.1:7300`. */
    baseUrl: string;
    /** A Tessera API key (`tsr_...`) or the root token. */
    token: string;
    /** Milliseconds per try (default 30000). */
    timeoutMs?: number;
    /** How often a 429 or 503 (or a connection that could not be made) is tried again (default 3). */
    maxRetries?: number;
    /** How long `getResolved` may serve a view from memory: 0 to 60 s (default 0: off). */
    resolvedCacheSeconds?: number;
    /** A `fetch` to use instead of the global one. */
    fetch?: typeof fetch;
}
/** Per-call options. */
export interface CallOptions {
    /** Aborts the call (and its retries). */
    signal?: AbortSignal;
}
export interface ProxyInit extends CallOptions {
    method?: string;
    headers?: Record<string, string>;
    query?: Record<string, string>;
    body?: string | Uint8Array;
}
/** A client of one Tessera server, with one API key. */
export declare class TesseraClient {
    #private;
    readonly baseUrl: string;
    constructor(options: TesseraClientOptions);
    toJSON(): {
        baseUrl: string;
    };
    /**
     * The connection's resolved view: defaults, the tenant's overrides and its
     * credentials merged, secrets decrypted (an expired OAuth token is
     * refreshed first). Audited by Tessera. From the in-process cache when it
     * is on and holds a view younger than `resolvedCacheSeconds`, unless
     * `fresh`.
     */
    getResolved(tenant: string, integration: string, options?: CallOptions & {
        fresh?: boolean;
    }): Promise<ResolvedView>;
    /** Forgets every cached resolved view. */
    clearCache(): void;
    /**
     * A tenant secret's value (the newest version, or `version`), or undefined
     * when there is none to read there (no such secret, or that version
     * deleted or destroyed). Other refusals throw.
     */
    getTenantSecret(tenant: string, key: string, options?: CallOptions & {
        version?: number;
    }): Promise<Secret | undefined>;
    /** One version of a secret with its metadata; a missing one throws `NotFoundError`. */
    readSecret(tenant: string, path: string, options?: CallOptions & {
        version?: number;
    }): Promise<SecretRecord>;
    /**
     * Writes a new version holding `value` (any JSON but null). With `cas`,
     * only if the newest version is `cas` (0: only if the secret is new);
     * otherwise `ConflictError` with code `cas_mismatch` and nothing written.
     */
    putTenantSecret(tenant: string, key: string, value: JsonValue, options?: CallOptions & {
        cas?: number;
        rotateAfterDays?: number;
    }): Promise<SecretWritten>;
    /** Writes a new version holding a map of fields (`{"data": {...}}`); otherwise as `putTenantSecret`. */
    putTenantSecretData(tenant: string, key: string, data: Record<string, JsonValue>, options?: CallOptions & {
        cas?: number;
        rotateAfterDays?: number;
    }): Promise<SecretWritten>;
    /** A secret's metadata and kept versions (never values). */
    secretVersions(tenant: string, path: string, options?: CallOptions): Promise<SecretMetadata>;
    /** The tenant's secret paths under `prefix` (never values). */
    listSecrets(tenant: string, prefix?: string, options?: CallOptions): Promise<SecretList>;
    /** Soft-deletes the newest version (or `versions`); `undeleteSecret` restores. */
    deleteSecret(tenant: string, path: string, options?: CallOptions & {
        versions?: number[];
    }): Promise<void>;
    /** Restores soft-deleted versions. */
    undeleteSecret(tenant: string, path: string, versions: number[], options?: CallOptions): Promise<void>;
    /** Erases versions for good. */
    destroySecretVersions(tenant: string, path: string, versions: number[], options?: CallOptions): Promise<void>;
    /** Copies `version` as the new newest version. */
    rollbackSecret(tenant: string, path: string, version: number, options?: CallOptions): Promise<SecretWritten>;
    /** Stores a connection's tokens (encrypted under the tenant's key). */
    storeCredentials(tenant: string, integration: string, credentials: CredentialInput, options?: CallOptions): Promise<StoredCredentials>;
    /** The stored credentials' metadata (never a token). */
    getCredentials(tenant: string, integration: string, options?: CallOptions): Promise<CredentialView>;
    /** Deletes the tokens (and revokes them at the provider when it can). */
    revokeCredentials(tenant: string, integration: string, options?: CallOptions): Promise<RevokedCredentials>;
    /** Calls an MCP tool (`<integration>.<tool>`) with the tenant's credential injected. */
    invokeTool(tenant: string, toolId: string, parameters?: Record<string, JsonValue>, options?: CallOptions & {
        integration?: string;
    }): Promise<ToolResult>;
    /**
     * Calls the integration's API through Tessera, which injects the tenant's
     * credential (`tenant` null: the key's own tenant). The answer is the
     * upstream's own and is returned whatever its status (read within the
     * timeout); Tessera's own refusals carry its JSON error body. Idempotent
     * methods are retried on 429/503.
     */
    proxy(tenant: string | null, integration: string, path: string, init?: ProxyInit): Promise<Response>;
    /** A short-lived link where the tenant's user connects integrations. */
    createConnectSession(input: ConnectSessionInput, options?: CallOptions): Promise<ConnectSession>;
    /** A session's status and what it connected. */
    getConnectSession(sessionId: string, options?: CallOptions): Promise<ConnectSessionView>;
    /** Ends a session: its link stops working now. */
    endConnectSession(sessionId: string, options?: CallOptions): Promise<void>;
    /** Subscribes `url` to events; the answer holds the signing secret, once. */
    createWebhook(tenant: string, url: string, events: WebhookEventName[], options?: CallOptions): Promise<CreatedWebhook>;
    /** Removes a webhook. */
    deleteWebhook(tenant: string, webhookId: string, options?: CallOptions): Promise<void>;
}
