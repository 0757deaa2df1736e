/**
 * What the client throws: one root, `TesseraError`.
 *
 * An error answer of the API is an `ApiError` (a subclass per status, so a
 * caller can test `e instanceof NotFoundError`) carrying the API's stable
 * `code` from `{"error": {"code", "message", "field"}}`: match on the code,
 * not the message. Every code the server can send is in `ErrorCode`
 * (generated from `/openapi.json`).
 */
import type { components } from "./generated/openapi.js";
/** Every error code the API answers, with its meaning in `/openapi.json`. */
export type ErrorCode = components["schemas"]["ErrorCode"];
/** Anything this client throws. */
export declare class TesseraError extends Error {
    name: string;
}
/**
 * An error answer from Tessera. `code` is one of `ErrorCode`; it is null
 * only when the answer did not carry Tessera's error body (something in
 * front of Tessera answered). `field` names the part of the request at
 * fault; `requestId` is the `X-Request-Id` this client sent, which the
 * server records in its logs and audit rows; `retryAfter` is the answer's
 * `Retry-After` in seconds.
 */
export declare class ApiError extends TesseraError {
    name: string;
    readonly status: number;
    readonly code: ErrorCode | null;
    readonly field: string | null;
    readonly requestId: string | null;
    readonly retryAfter: number | null;
    constructor(status: number, code: ErrorCode | null, message: string, field: string | null, requestId: string | null, retryAfter: number | null);
}
/** 400: the request is not valid (`field` names what). */
export declare class BadRequestError extends ApiError {
    name: string;
}
/** 401: no token, or one Tessera does not know. */
export declare class AuthenticationError extends ApiError {
    name: string;
}
/** 403: the key's role or scopes do not allow this. */
export declare class PermissionDeniedError extends ApiError {
    name: string;
}
/** 404: no such resource (also another tenant's, for a tenant-bound key). */
export declare class NotFoundError extends ApiError {
    name: string;
}
/** 409: the request conflicts with the current state (`cas_mismatch`, ...). */
export declare class ConflictError extends ApiError {
    name: string;
}
/** 422: the values do not satisfy the integration's schema, or a tool refused the call. */
export declare class UnprocessableError extends ApiError {
    name: string;
}
/** 429: over the rate limit, still after the retries. */
export declare class RateLimitedError extends ApiError {
    name: string;
}
/** 502 or 504: the integration's API or MCP server failed. */
export declare class UpstreamError extends ApiError {
    name: string;
}
/** 503: a backend is down, still after the retries. */
export declare class UnavailableError extends ApiError {
    name: string;
}
/** No answer: the connection failed or broke. */
export declare class TransportError extends TesseraError {
    name: string;
}
/** No answer within the client's timeout. */
export declare class RequestTimeoutError extends TransportError {
    name: string;
}
/** A webhook delivery whose signature or timestamp does not check out. */
export declare class WebhookVerificationError extends TesseraError {
    name: string;
}
/** The typed error of an error answer, from its status and body text. */
export declare function errorFromAnswer(status: number, statusText: string, body: string, requestId: string | null, retryAfter: number | null): ApiError;
