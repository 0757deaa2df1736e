"""When to try a request again, and after how long.

Tessera answers 429 (rate limited, with ``Retry-After``) and 503 (a backend
is down, or the connection cap was reached) before it does anything, so
those are retried for every API call. A failed connection (nothing sent) is
retried too. Nothing else is: a timeout may have reached the server.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` tries after the first; waits ``backoff`` seconds
    doubling per retry (with jitter), or exactly what ``Retry-After`` asks.
    An answer asking for more than ``max_delay`` seconds is not waited for:
    its error is raised at once.
    """

    max_retries: int = 3
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, retry: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based), or None: give up."""
        if retry >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        # "Full jitter" over the upper half, so replicas that failed together spread out.
        return float(min(self.max_delay, self.backoff * 2.0**retry) * random.uniform(0.5, 1.0))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
