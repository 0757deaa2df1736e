/**
 * Client for Tessera, the multi-tenant vault for integration configuration
 * and credentials: `TesseraClient` on the global `fetch`, no dependencies.
 * Values Tessera hands out decrypted print as `[SECRET]` (`reveal()` returns
 * them); errors carry the API's `code`.
 */
export { TesseraClient, VERSION, type CallOptions, type ProxyInit, type TesseraClientOptions } from "./client.js";
export { MAX_RESOLVED_CACHE_SECONDS } from "./cache.js";
export { ApiError, AuthenticationError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError, RateLimitedError, RequestTimeoutError, TesseraError, TransportError, UnavailableError, UnprocessableError, UpstreamError, WebhookVerificationError, type ErrorCode, } from "./errors.js";
export { MASK, ResolvedView, Secret, type JsonValue } from "./secret.js";
export { DEFAULT_TOLERANCE_SECONDS, verifyWebhook, type VerifyOptions, type WebhookEvent } from "./webhooks.js";
export type * from "./types.js";
export type { components, operations, paths } from "./generated/openapi.js";
