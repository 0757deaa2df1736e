/**
 * Client for Tessera, the multi-tenant vault for integration configuration
 * and credentials: `TesseraClient` on the global `fetch`, no dependencies.
 * Values Tessera hands out decrypted print as `[SECRET]` (`reveal()` returns
 * them); errors carry the API's `code`.
 */
export { TesseraClient, VERSION } from "./client.js";
export { MAX_RESOLVED_CACHE_SECONDS } from "./cache.js";
export { ApiError, AuthenticationError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError, RateLimitedError, RequestTimeoutError, TesseraError, TransportError, UnavailableError, UnprocessableError, UpstreamError, WebhookVerificationError, } from "./errors.js";
export { MASK, ResolvedView, Secret } from "./secret.js";
export { DEFAULT_TOLERANCE_SECONDS, verifyWebhook } from "./webhooks.js";
