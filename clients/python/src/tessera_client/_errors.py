"""What the client raises: one root, ``TesseraError``.

An error answer of the API is an ``ApiError`` (a subclass per status, so a
caller can catch ``NotFoundError``) carrying the API's stable ``code`` from
``{"error": {"code", "message", "field"}}``: match on the code, not the
message. Every code the server can send is in ``ErrorCode`` (generated from
``/openapi.json``).
"""

from __future__ import annotations

import json

import httpx

from ._models import ErrorCode


class TesseraError(Exception):
    """Anything this client raises."""


class ApiError(TesseraError):
    """An error answer from Tessera.

    ``code`` is one of ``ErrorCode``; it is None only when the answer did not
    carry Tessera's error body (something in front of Tessera answered).
    ``field`` names the part of the request at fault, when there is one.
    ``request_id`` is the ``X-Request-Id`` this client sent, which the
    server records in its logs and audit rows. ``retry_after`` is the
    answer's ``Retry-After`` in seconds, when it had one.
    """

    def __init__(
        self,
        status: int,
        code: ErrorCode | None,
        message: str,
        field: str | None,
        request_id: str | None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code or 'error'}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequestError(ApiError):
    """400: the request is not valid (``field`` names what)."""


class AuthenticationError(ApiError):
    """401: no token, or one Tessera does not know."""


class PermissionDeniedError(ApiError):
    """403: the key's role or scopes do not allow this."""


class NotFoundError(ApiError):
    """404: no such resource (also another tenant's, for a tenant-bound key)."""


class ConflictError(ApiError):
    """409: the request conflicts with the current state (``cas_mismatch``, ...)."""


class UnprocessableError(ApiError):
    """422: the values do not satisfy the integration's schema, or a tool refused the call."""


class RateLimitedError(ApiError):
    """429: over the rate limit, still after the retries."""


class UpstreamError(ApiError):
    """502 or 504: the integration's API or MCP server failed."""


class UnavailableError(ApiError):
    """503: a backend is down, still after the retries."""


class TransportError(TesseraError):
    """No answer: the connection failed or broke."""


class RequestTimeoutError(TransportError):
    """No answer within the client's timeout."""


class WebhookVerificationError(TesseraError):
    """A webhook delivery whose signature or timestamp does not check out."""


_BY_STATUS: dict[int, type[ApiError]] = {
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
}


def error_from_response(
    response: httpx.Response, request_id: str | None, retry_after: float | None
) -> ApiError:
    """The typed error of an error answer (its body already read)."""
    code: ErrorCode | None = None
    message = response.reason_phrase or "error"
    field: str | None = None
    try:
        detail = json.loads(response.content)["error"]
        if isinstance(detail, dict) and isinstance(detail.get("code"), str):
            code = detail["code"]
            message = str(detail.get("message") or message)
            field = detail["field"] if isinstance(detail.get("field"), str) else None
    except (ValueError, KeyError, TypeError):
        pass
    cls = _BY_STATUS.get(response.status_code, ApiError)
    return cls(response.status_code, code, message, field, request_id, retry_after)
