"""The optional in-process cache of resolved views.

Off unless asked for (``resolved_cache_seconds``). A cached view is served
for at most that many seconds after it was fetched, and never more than
``MAX_RESOLVED_CACHE_SECONDS``: Tessera itself may see a change (a token
refreshed, a secret rotated, a connection revoked) at any moment, and this
cache does not hear of it. Writes made through the same client object
(credentials stored or revoked) drop that connection's entry at once.

A cached read is not a read of Tessera, so it is not in Tessera's audit log:
the audit shows one read per fetch, not per use.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ._secret import ResolvedView

MAX_RESOLVED_CACHE_SECONDS = 60.0
"""The longest a resolved view may be cached."""

MAX_ENTRIES = 1024


class ResolvedCache:
    """Views by (tenant, integration), each with when it was fetched."""

    def __init__(self, max_age: float) -> None:
        if not 0 <= max_age <= MAX_RESOLVED_CACHE_SECONDS:
            raise ValueError(f"resolved_cache_seconds must be between 0 and {MAX_RESOLVED_CACHE_SECONDS:g}")
        self.max_age = max_age
        self._entries: OrderedDict[tuple[str, str], tuple[float, ResolvedView]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant: str, integration: str) -> ResolvedView | None:
        if self.max_age == 0:
            return None
        with self._lock:
            entry = self._entries.get((tenant, integration))
            if entry is None:
                return None
            if time.monotonic() - entry[0] >= self.max_age:
                del self._entries[(tenant, integration)]
                return None
            return entry[1]

    def put(self, tenant: str, integration: str, view: ResolvedView, fetched_at: float) -> None:
        if self.max_age == 0:
            return
        with self._lock:
            self._entries[(tenant, integration)] = (fetched_at, view)
            self._entries.move_to_end((tenant, integration))
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def drop(self, tenant: str, integration: str) -> None:
        with self._lock:
            self._entries.pop((tenant, integration), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
