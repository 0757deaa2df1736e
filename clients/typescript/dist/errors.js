/**
 * What the client throws: one root, `TesseraError`.
 *
 * An error answer of the API is an `ApiError` (a subclass per status, so a
 * caller can test `e instanceof NotFoundError`) carrying the API's stable
 * `code` from `{"error": {"code", "message", "field"}}`: match on the code,
 * not the message. Every code the server can send is in `ErrorCode`
 * (generated from `/openapi.json`).
 */
/** Anything this client throws. */
export class TesseraError extends Error {
    name = "TesseraError";
}
/**
 * An error answer from Tessera. `code` is one of `ErrorCode`; it is null
 * only when the answer did not carry Tessera's error body (something in
 * front of Tessera answered). `field` names the part of the request at
 * fault; `requestId` is the `X-Request-Id` this client sent, which the
 * server records in its logs and audit rows; `retryAfter` is the answer's
 * `Retry-After` in seconds.
 */
export class ApiError extends TesseraError {
    name = "ApiError";
    status;
    code;
    field;
    requestId;
    retryAfter;
    constructor(status, code, message, field, requestId, retryAfter) {
        super(`${status} ${code ?? "error"}: ${message}`);
        this.status = status;
        this.code = code;
        this.field = field;
        this.requestId = requestId;
        this.retryAfter = retryAfter;
    }
}
/** 400: the request is not valid (`field` names what). */
export class BadRequestError extends ApiError {
    name = "BadRequestError";
}
/** 401: no token, or one Tessera does not know. */
export class AuthenticationError extends ApiError {
    name = "AuthenticationError";
}
/** 403: the key's role or scopes do not allow this. */
export class PermissionDeniedError extends ApiError {
    name = "PermissionDeniedError";
}
/** 404: no such resource (also another tenant's, for a tenant-bound key). */
export class NotFoundError extends ApiError {
    name = "NotFoundError";
}
/** 409: the request conflicts with the current state (`cas_mismatch`, ...). */
export class ConflictError extends ApiError {
    name = "ConflictError";
}
/** 422: the values do not satisfy the integration's schema, or a tool refused the call. */
export class UnprocessableError extends ApiError {
    name = "UnprocessableError";
}
/** 429: over the rate limit, still after the retries. */
export class RateLimitedError extends ApiError {
    name = "RateLimitedError";
}
/** 502 or 504: the integration's API or MCP server failed. */
export class UpstreamError extends ApiError {
    name = "UpstreamError";
}
/** 503: a backend is down, still after the retries. */
export class UnavailableError extends ApiError {
    name = "UnavailableError";
}
/** No answer: the connection failed or broke. */
export class TransportError extends TesseraError {
    name = "TransportError";
}
/** No answer within the client's timeout. */
export class RequestTimeoutError extends TransportError {
    name = "RequestTimeoutError";
}
/** A webhook delivery whose signature or timestamp does not check out. */
export class WebhookVerificationError extends TesseraError {
    name = "WebhookVerificationError";
}
const BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitedError,
    502: UpstreamError,
    503: UnavailableError,
    504: UpstreamError,
};
/** The typed error of an error answer, from its status and body text. */
export function errorFromAnswer(status, statusText, body, requestId, retryAfter) {
    let code = null;
    let message = statusText || "error";
    let field = null;
    try {
        const detail = JSON.parse(body).error;
        if (detail && typeof detail.code === "string") {
            code = detail.code;
            if (typeof detail.message === "string")
                message = detail.message;
            if (typeof detail.field === "string")
                field = detail.field;
        }
    }
    catch {
        // Not Tessera's error body: the status alone says what happened.
    }
    const Kind = BY_STATUS[status] ?? ApiError;
    return new Kind(status, code, message, field, requestId, retryAfter);
}
