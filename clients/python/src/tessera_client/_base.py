"""What both twins share: settings, request headers, and reading an answer."""

from __future__ import annotations

import uuid
from typing import Final, TypeVar

import httpx

from ._cache import ResolvedCache
from ._core import Call
from ._errors import error_from_response
from ._retry import RetryPolicy, parse_retry_after

T = TypeVar("T")

VERSION: Final = "0.1.0"
DEFAULT_TIMEOUT: Final = 30.0


class Settings:
    """Checked once at construction; the token never appears in a repr."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float,
        max_retries: int,
        resolved_cache_seconds: float,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL, e.g. http://127.0.0.1:7300")
        if not token:
            raise ValueError("token must be a Tessera API key (tsr_...) or the root token")
        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        self.base_url = base_url.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"tessera-client-python/{VERSION}",
            "Accept": "application/json",
        }
        self.timeout = httpx.Timeout(timeout)
        self.retry = RetryPolicy(max_retries=max_retries)
        self.cache = ResolvedCache(resolved_cache_seconds)

    def __repr__(self) -> str:
        return f"Settings(base_url={self.base_url!r})"


def new_request_id() -> str:
    """Sent as ``X-Request-Id`` on every try of one call, so the server's logs
    and audit rows name the same id the error carries."""
    return str(uuid.uuid4())


def retry_delay(settings: Settings, call: Call[T], response: httpx.Response, retry: int) -> float | None:
    """Seconds to wait before trying ``call`` again after ``response``, or None."""
    if not call.retry_statuses or response.status_code not in (429, 503):
        return None
    return settings.retry.delay(retry, parse_retry_after(response.headers.get("retry-after")))


def finish(call: Call[T], response: httpx.Response, request_id: str) -> T:
    """The call's value, or its typed error raised."""
    if call.any_status or response.is_success:
        return call.parse(response)
    error = error_from_response(response, request_id, parse_retry_after(response.headers.get("retry-after")))
    if call.on_error is not None:
        return call.on_error(error)
    raise error
