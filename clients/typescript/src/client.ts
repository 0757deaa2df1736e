/**
 * `TesseraClient`: every call of the API the application side needs, on the
 * global `fetch`, with retries, timeouts and typed errors.
 */

import { ResolvedCache } from "./cache.js";
import { errorFromAnswer, RequestTimeoutError, TransportError, type ApiError } from "./errors.js";
import { parseRetryAfter, RETRY_STATUSES, retryDelay, sleep, type RetryPolicy } from "./retry.js";
import { ResolvedView, Secret, type JsonValue } from "./secret.js";
import type {
  ConnectSession,
  ConnectSessionInput,
  ConnectSessionView,
  CreatedConnectSession,
  CreatedWebhook,
  CredentialInput,
  CredentialView,
  ResolvedConnection,
  RevokedCredentials,
  SecretList,
  SecretMetadata,
  SecretRead,
  SecretRecord,
  SecretWritten,
  StoredCredentials,
  ToolResult,
  WebhookCreated,
  WebhookEventName,
} from "./types.js";

export const VERSION = "0.1.0";

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

/** What `get_tenant_secret` answers undefined for: no readable value at that path (version). */
const NO_VALUE_CODES: ReadonlySet<string> = new Set([
  "secret_not_found",
  "version_not_found",
  "version_deleted",
  "version_destroyed",
]);

/** Headers a proxied call may not set: the client's own. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set(["authorization", "x-request-id", "x-tenant-id"]);

const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** One request and how its answer is read. */
interface Call<T> {
  method: string;
  path: string;
  query?: Record<string, string>;
  json?: unknown;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  parse: (text: string) => T;
  /** An error answer turned into a value (or thrown again). */
  onError?: (e: ApiError) => T;
  /** Proxied answers are the upstream's own: handed back whatever their status. */
  raw?: (answer: Response) => T;
  /** 429/503 mean Tessera did nothing: retried (proxied calls only when idempotent). */
  retryStatuses?: boolean;
}

/** Statuses whose answer has no body (a `Response` refuses one). */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 204, 205, 304]);

/** One path segment (a tenant id, an integration key, an id), escaped. */
function segment(name: string, value: string): string {
  if (value === "" || value === "." || value === "..") {
    throw new RangeError(`${name} must not be empty, '.' or '..'`);
  }
  return encodeURIComponent(value);
}

/** A secret path: segments joined by '/', each escaped. */
function secretPath(path: string): string {
  return path
    .split("/")
    .map((s) => segment("each segment of a secret path", s))
    .join("/");
}

/**
 * The path of a proxied call, kept as written (escapes included: Tessera
 * itself refuses encoded slashes and the like). A `.` or `..` segment, also
 * percent-encoded, is refused here: URL parsing would resolve it before
 * Tessera sees it, and `../../api-keys` would leave `/proxy/` and reach
 * another route of the API with this client's key.
 */
function proxyPath(path: string): string {
  const [route = ""] = path.split("?", 1);
  for (const part of route.split(/[/\\]/)) {
    const decoded = part.replace(/%2e/gi, ".");
    if (decoded === "." || decoded === "..") throw new RangeError("a proxied path may not have '.' or '..' segments");
  }
  return encodeURI(path.replace(/^\/+/, "")).replace(/%25([0-9A-Fa-f]{2})/g, "%$1");
}

function json<T>(text: string): T {
  return JSON.parse(text) as T;
}

function nothing(): undefined {
  return undefined;
}

function record(text: string): SecretRecord {
  const b = json<SecretRead>(text);
  // The payload's name says which of the two it is; its value is JSON as parsed.
  const [kind, value] = "data" in b ? (["data", b.data] as const) : (["value", b.value] as const);
  return { path: b.path, version: b.version, createdAt: b.createdAt, kind, value: new Secret(value as JsonValue) };
}

function isTimeout(e: unknown): boolean {
  return e instanceof DOMException && e.name === "TimeoutError";
}

/** A failed fetch that never reached the server (safe to retry for any method). */
function neverSent(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } } | null)?.cause?.code;
  return code === "ECONNREFUSED" || code === "UND_ERR_CONNECT_TIMEOUT";
}

/** A client of one Tessera server, with one API key. */
export class TesseraClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #cache: ResolvedCache;
  readonly #fetch: typeof fetch;

  constructor(options: TesseraClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) {
      throw new RangeError("baseUrl must be an http(s) URL, e.g. http://127.0.0.1:7300");
    }
    if (!options.token) throw new RangeError("token must be a Tessera API key (tsr_...) or the root token");
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new RangeError("timeoutMs must be positive");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = timeoutMs;
    this.#retry = { maxRetries: options.maxRetries ?? 3, backoffMs: 500, maxDelayMs: 30_000 };
    this.#cache = new ResolvedCache(options.resolvedCacheSeconds ?? 0);
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  toJSON(): { baseUrl: string } {
    return { baseUrl: this.baseUrl };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `TesseraClient { baseUrl: '${this.baseUrl}' }`;
  }

  /** Sends `call`, retrying 429/503 and refused connections, and reads its answer. */
  async #run<T>(call: Call<T>, signal?: AbortSignal): Promise<T> {
    const requestId = crypto.randomUUID();
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
      "user-agent": `tessera-client-typescript/${VERSION}`,
      ...call.headers,
      "x-request-id": requestId,
    };
    // A copy of bytes into an ArrayBuffer of its own: what `fetch` takes, whatever the caller's view was over.
    let body: string | Uint8Array<ArrayBuffer> | undefined =
      typeof call.body === "string" || call.body === undefined ? call.body : new Uint8Array(call.body);
    if (call.json !== undefined) {
      body = JSON.stringify(call.json);
      headers["content-type"] = "application/json";
    }
    const url = new URL(this.baseUrl + call.path);
    for (const [k, v] of Object.entries(call.query ?? {})) url.searchParams.set(k, v);
    for (let retry = 0; ; retry++) {
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let response: Response;
      let bytes: ArrayBuffer;
      try {
        response = await this.#fetch(url, { method: call.method, headers, body, signal: both, redirect: "manual" });
        // The body is read within the same time limit as the head.
        bytes = await response.arrayBuffer();
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (isTimeout(e) || timeout.aborted) {
          throw new RequestTimeoutError(`no answer from ${this.baseUrl} within ${this.#timeoutMs} ms`);
        }
        const delay = neverSent(e) ? retryDelay(this.#retry, retry, null) : null;
        if (delay === null) {
          throw new TransportError(`the request to ${this.baseUrl} failed: ${(e as Error).message}`, { cause: e });
        }
        await sleep(delay, signal);
        continue;
      }
      const { status, statusText } = response;
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      const delay =
        call.retryStatuses !== false && RETRY_STATUSES.has(status) ? retryDelay(this.#retry, retry, retryAfter) : null;
      if (delay !== null) {
        await sleep(delay, signal);
        continue;
      }
      if (call.raw) {
        const kept = NULL_BODY_STATUSES.has(status) ? null : bytes;
        return call.raw(new Response(kept, { status, statusText, headers: response.headers }));
      }
      const text = new TextDecoder().decode(bytes);
      if (status >= 200 && status < 300) return call.parse(text);
      const error = errorFromAnswer(status, statusText, text, requestId, retryAfter);
      if (call.onError) return call.onError(error);
      throw error;
    }
  }

  // --- Resolved views -----------------------------------------------------

  /**
   * The connection's resolved view: defaults, the tenant's overrides and its
   * credentials merged, secrets decrypted (an expired OAuth token is
   * refreshed first). Audited by Tessera. From the in-process cache when it
   * is on and holds a view younger than `resolvedCacheSeconds`, unless
   * `fresh`.
   */
  async getResolved(
    tenant: string,
    integration: string,
    options: CallOptions & { fresh?: boolean } = {},
  ): Promise<ResolvedView> {
    if (!options.fresh) {
      const hit = this.#cache.get(tenant, integration);
      if (hit) return hit;
    }
    const fetchedAt = performance.now();
    const view = await this.#run(
      {
        method: "GET",
        path: `/tenants/${segment("tenant", tenant)}/integrations/${segment("integration", integration)}/resolved`,
        parse: (text) => {
          const b = json<ResolvedConnection>(text);
          // JSON.parse gave the config: its values are JSON values.
          return new ResolvedView(b.tenantId, b.integration, b.config as Record<string, JsonValue>);
        },
      },
      options.signal,
    );
    this.#cache.put(tenant, integration, view, fetchedAt);
    return view;
  }

  /** Forgets every cached resolved view. */
  clearCache(): void {
    this.#cache.clear();
  }

  // --- Tenant secrets -----------------------------------------------------

  #secrets(tenant: string, path: string): string {
    return `/tenants/${segment("tenant", tenant)}/secrets/${secretPath(path)}`;
  }

  /**
   * A tenant secret's value (the newest version, or `version`), or undefined
   * when there is none to read there (no such secret, or that version
   * deleted or destroyed). Other refusals throw.
   */
  async getTenantSecret(
    tenant: string,
    key: string,
    options: CallOptions & { version?: number } = {},
  ): Promise<Secret | undefined> {
    return this.#run<Secret | undefined>(
      {
        method: "GET",
        path: this.#secrets(tenant, key),
        query: options.version === undefined ? {} : { version: String(options.version) },
        parse: (text) => record(text).value,
        onError: (e) => {
          if (e.status === 404 && e.code !== null && NO_VALUE_CODES.has(e.code)) return undefined;
          throw e;
        },
      },
      options.signal,
    );
  }

  /** One version of a secret with its metadata; a missing one throws `NotFoundError`. */
  async readSecret(tenant: string, path: string, options: CallOptions & { version?: number } = {}): Promise<SecretRecord> {
    return this.#run(
      {
        method: "GET",
        path: this.#secrets(tenant, path),
        query: options.version === undefined ? {} : { version: String(options.version) },
        parse: record,
      },
      options.signal,
    );
  }

  /**
   * Writes a new version holding `value` (any JSON but null). With `cas`,
   * only if the newest version is `cas` (0: only if the secret is new);
   * otherwise `ConflictError` with code `cas_mismatch` and nothing written.
   */
  async putTenantSecret(
    tenant: string,
    key: string,
    value: JsonValue,
    options: CallOptions & { cas?: number; rotateAfterDays?: number } = {},
  ): Promise<SecretWritten> {
    if (value === null) throw new RangeError("a secret value may not be null");
    return this.#write(tenant, key, { value }, options);
  }

  /** Writes a new version holding a map of fields (`{"data": {...}}`); otherwise as `putTenantSecret`. */
  async putTenantSecretData(
    tenant: string,
    key: string,
    data: Record<string, JsonValue>,
    options: CallOptions & { cas?: number; rotateAfterDays?: number } = {},
  ): Promise<SecretWritten> {
    return this.#write(tenant, key, { data }, options);
  }

  async #write(
    tenant: string,
    key: string,
    payload: { value: JsonValue } | { data: Record<string, JsonValue> },
    options: CallOptions & { cas?: number; rotateAfterDays?: number },
  ): Promise<SecretWritten> {
    const body: Record<string, unknown> = { ...payload };
    if (options.cas !== undefined) body.cas = options.cas;
    if (options.rotateAfterDays !== undefined) body.rotateAfterDays = options.rotateAfterDays;
    return this.#run(
      { method: "PUT", path: this.#secrets(tenant, key), json: body, parse: json<SecretWritten> },
      options.signal,
    );
  }

  /** A secret's metadata and kept versions (never values). */
  async secretVersions(tenant: string, path: string, options: CallOptions = {}): Promise<SecretMetadata> {
    return this.#run(
      { method: "GET", path: this.#secrets(tenant, path), query: { versions: "" }, parse: json<SecretMetadata> },
      options.signal,
    );
  }

  /** The tenant's secret paths under `prefix` (never values). */
  async listSecrets(tenant: string, prefix = "", options: CallOptions = {}): Promise<SecretList> {
    return this.#run(
      {
        method: "GET",
        path: `/tenants/${segment("tenant", tenant)}/secrets`,
        query: { prefix },
        parse: json<SecretList>,
      },
      options.signal,
    );
  }

  /** Soft-deletes the newest version (or `versions`); `undeleteSecret` restores. */
  async deleteSecret(tenant: string, path: string, options: CallOptions & { versions?: number[] } = {}): Promise<void> {
    await this.#run(
      {
        method: "DELETE",
        path: this.#secrets(tenant, path),
        query: options.versions === undefined ? {} : { versions: options.versions.join(",") },
        parse: nothing,
      },
      options.signal,
    );
  }

  /** Restores soft-deleted versions. */
  async undeleteSecret(tenant: string, path: string, versions: number[], options: CallOptions = {}): Promise<void> {
    await this.#run(
      { method: "POST", path: `${this.#secrets(tenant, path)}:undelete`, json: { versions }, parse: nothing },
      options.signal,
    );
  }

  /** Erases versions for good. */
  async destroySecretVersions(
    tenant: string,
    path: string,
    versions: number[],
    options: CallOptions = {},
  ): Promise<void> {
    await this.#run(
      { method: "POST", path: `${this.#secrets(tenant, path)}:destroy`, json: { versions }, parse: nothing },
      options.signal,
    );
  }

  /** Copies `version` as the new newest version. */
  async rollbackSecret(tenant: string, path: string, version: number, options: CallOptions = {}): Promise<SecretWritten> {
    return this.#run(
      {
        method: "POST",
        path: `${this.#secrets(tenant, path)}:rollback`,
        json: { version },
        parse: json<SecretWritten>,
      },
      options.signal,
    );
  }

  // --- Credentials --------------------------------------------------------

  #credentials(tenant: string, integration: string): string {
    return `/tenants/${segment("tenant", tenant)}/integrations/${segment("integration", integration)}/credentials`;
  }

  /** Stores a connection's tokens (encrypted under the tenant's key). */
  async storeCredentials(
    tenant: string,
    integration: string,
    credentials: CredentialInput,
    options: CallOptions = {},
  ): Promise<StoredCredentials> {
    try {
      return await this.#run(
        {
          method: "POST",
          path: this.#credentials(tenant, integration),
          json: credentials,
          parse: json<StoredCredentials>,
        },
        options.signal,
      );
    } finally {
      this.#cache.drop(tenant, integration);
    }
  }

  /** The stored credentials' metadata (never a token). */
  async getCredentials(tenant: string, integration: string, options: CallOptions = {}): Promise<CredentialView> {
    return this.#run(
      { method: "GET", path: this.#credentials(tenant, integration), parse: json<CredentialView> },
      options.signal,
    );
  }

  /** Deletes the tokens (and revokes them at the provider when it can). */
  async revokeCredentials(tenant: string, integration: string, options: CallOptions = {}): Promise<RevokedCredentials> {
    try {
      return await this.#run(
        { method: "DELETE", path: this.#credentials(tenant, integration), parse: json<RevokedCredentials> },
        options.signal,
      );
    } finally {
      this.#cache.drop(tenant, integration);
    }
  }

  // --- Gateway: tools and proxy -------------------------------------------

  /** Calls an MCP tool (`<integration>.<tool>`) with the tenant's credential injected. */
  async invokeTool(
    tenant: string,
    toolId: string,
    parameters?: Record<string, JsonValue>,
    options: CallOptions & { integration?: string } = {},
  ): Promise<ToolResult> {
    const body: Record<string, unknown> = { toolId, tenantId: tenant };
    if (parameters !== undefined) body.parameters = parameters;
    if (options.integration !== undefined) body.integration = options.integration;
    return this.#run({ method: "POST", path: "/api/v1/tools/invoke", json: body, parse: json<ToolResult> }, options.signal);
  }

  /**
   * Calls the integration's API through Tessera, which injects the tenant's
   * credential (`tenant` null: the key's own tenant). The answer is the
   * upstream's own and is returned whatever its status (read within the
   * timeout); Tessera's own refusals carry its JSON error body. Idempotent
   * methods are retried on 429/503.
   */
  async proxy(tenant: string | null, integration: string, path: string, init: ProxyInit = {}): Promise<Response> {
    const method = (init.method ?? "GET").toUpperCase();
    // The Authorization header is this client's Tessera token (Tessera never passes it upstream).
    const headers: Record<string, string> = Object.fromEntries(
      Object.entries(init.headers ?? {}).filter(([k]) => !RESERVED_HEADERS.has(k.toLowerCase())),
    );
    if (tenant !== null) headers["x-tenant-id"] = tenant;
    const upstream = proxyPath(path);
    return this.#run(
      {
        method,
        path: `/proxy/${segment("integration", integration)}/${upstream}`,
        query: init.query,
        body: init.body,
        headers,
        parse: () => {
          throw new Error("a proxied answer is read raw");
        },
        raw: (answer) => answer,
        retryStatuses: IDEMPOTENT_METHODS.has(method),
      },
      init.signal,
    );
  }

  // --- Hosted Connect -----------------------------------------------------

  /** A short-lived link where the tenant's user connects integrations. */
  async createConnectSession(input: ConnectSessionInput, options: CallOptions = {}): Promise<ConnectSession> {
    return this.#run(
      {
        method: "POST",
        path: "/connect/sessions",
        json: input,
        parse: (text) => {
          const b = json<CreatedConnectSession>(text);
          return { id: b.id, expiresAt: b.expiresAt, url: new Secret(b.url), token: new Secret(b.token) };
        },
      },
      options.signal,
    );
  }

  /** A session's status and what it connected. */
  async getConnectSession(sessionId: string, options: CallOptions = {}): Promise<ConnectSessionView> {
    return this.#run(
      { method: "GET", path: `/connect/sessions/${segment("session id", sessionId)}`, parse: json<ConnectSessionView> },
      options.signal,
    );
  }

  /** Ends a session: its link stops working now. */
  async endConnectSession(sessionId: string, options: CallOptions = {}): Promise<void> {
    await this.#run(
      { method: "DELETE", path: `/connect/sessions/${segment("session id", sessionId)}`, parse: nothing },
      options.signal,
    );
  }

  // --- Webhooks -----------------------------------------------------------

  /** Subscribes `url` to events; the answer holds the signing secret, once. */
  async createWebhook(
    tenant: string,
    url: string,
    events: WebhookEventName[],
    options: CallOptions = {},
  ): Promise<CreatedWebhook> {
    return this.#run(
      {
        method: "POST",
        path: `/tenants/${segment("tenant", tenant)}/webhooks`,
        json: { url, events },
        parse: (text) => {
          const { secret, ...webhook } = json<WebhookCreated>(text);
          return { webhook, secret: new Secret(secret) };
        },
      },
      options.signal,
    );
  }

  /** Removes a webhook. */
  async deleteWebhook(tenant: string, webhookId: string, options: CallOptions = {}): Promise<void> {
    await this.#run(
      {
        method: "DELETE",
        path: `/tenants/${segment("tenant", tenant)}/webhooks/${segment("webhook id", webhookId)}`,
        parse: nothing,
      },
      options.signal,
    );
  }
}
