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
export class TesseraError extends Error {
  override name = "TesseraError";
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
  override name = "ApiError";
  readonly status: number;
  readonly code: ErrorCode | null;
  readonly field: string | null;
  readonly requestId: string | null;
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: ErrorCode | null,
    message: string,
    field: string | null,
    requestId: string | null,
    retryAfter: number | null,
  ) {
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
  override name = "BadRequestError";
}
/** 401: no token, or one Tessera does not know. */
export class AuthenticationError extends ApiError {
  override name = "AuthenticationError";
}
/** 403: the key's role or scopes do not allow this. */
export class PermissionDeniedError extends ApiError {
  override name = "PermissionDeniedError";
}
/** 404: no such resource (also another tenant's, for a tenant-bound key). */
export class NotFoundError extends ApiError {
  override name = "NotFoundError";
}
/** 409: the request conflicts with the current state (`cas_mismatch`, ...). */
export class ConflictError extends ApiError {
  override name = "ConflictError";
}
/** 422: the values do not satisfy the integration's schema, or a tool refused the call. */
export class UnprocessableError extends ApiError {
  override name = "UnprocessableError";
}
/** 429: over the rate limit, still after the retries. */
export class RateLimitedError extends ApiError {
  override name = "RateLimitedError";
}
/** 502 or 504: the integration's API or MCP server failed. */
export class UpstreamError extends ApiError {
  override name = "UpstreamError";
}
/** 503: a backend is down, still after the retries. */
export class UnavailableError extends ApiError {
  override name = "UnavailableError";
}

/** No answer: the connection failed or broke. */
export class TransportError extends TesseraError {
  override name = "TransportError";
}
/** No answer within the client's timeout. */
export class RequestTimeoutError extends TransportError {
  override name = "RequestTimeoutError";
}
/** A webhook delivery whose signature or timestamp does not check out. */
export class WebhookVerificationError extends TesseraError {
  override name = "WebhookVerificationError";
}

const BY_STATUS: Record<number, typeof ApiError> = {
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
export function errorFromAnswer(
  status: number,
  statusText: string,
  body: string,
  requestId: string | null,
  retryAfter: number | null,
): ApiError {
  let code: ErrorCode | null = null;
  let message = statusText || "error";
  let field: string | null = null;
  try {
    const detail = (JSON.parse(body) as { error?: unknown }).error as Record<string, unknown> | undefined;
    if (detail && typeof detail.code === "string") {
      code = detail.code as ErrorCode;
      if (typeof detail.message === "string") message = detail.message;
      if (typeof detail.field === "string") field = detail.field;
    }
  } catch {
    // Not Tessera's error body: the status alone says what happened.
  }
  const Kind = BY_STATUS[status] ?? ApiError;
  return new Kind(status, code, message, field, requestId, retryAfter);
}
