"""Checking a webhook delivery as Tessera signs it.

Tessera sends ``Tessera-Signature: t=<unix seconds>,v1=<hex>`` where
``<hex>`` is HMAC-SHA256, keyed with the webhook's secret as shown at
creation (``whsec_...``, its UTF-8 bytes), over ``<t>.<raw body>``. The
check recomputes it over the body bytes as received (before any JSON
parsing), compares in constant time, and refuses a timestamp further than
``tolerance`` seconds from now (a replayed delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Final, TypeAlias, cast

from ._errors import WebhookVerificationError
from ._models import WebhookDelivery
from ._secret import Secret

DEFAULT_TOLERANCE_SECONDS: Final = 300
"""How far a delivery's timestamp may be from now: five minutes."""

WebhookEvent: TypeAlias = WebhookDelivery
"""A delivery's body: the generated ``WebhookDelivery`` (the document's
``webhooks`` section). ``id`` is also the ``Tessera-Delivery`` header, the
same on every retry of one event: deduplicate on it."""


def verify_webhook(
    secret: str | Secret,
    body: bytes | str,
    signature: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """Checks a delivery and returns its event; raises ``WebhookVerificationError``.

    ``body`` is the request body exactly as received; ``signature`` the
    ``Tessera-Signature`` header's value.
    """
    key = (secret.reveal_text() if isinstance(secret, Secret) else secret).encode()
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if not signature:
        raise WebhookVerificationError("no Tessera-Signature header")
    timestamp: str | None = None
    candidates: list[str] = []
    for part in signature.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not timestamp.isdigit() or not candidates:
        raise WebhookVerificationError("Tessera-Signature is not t=<seconds>,v1=<hex>")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise WebhookVerificationError(f"the delivery's timestamp is {abs(age):.0f} s from now (tolerance {tolerance:g} s)")
    expected = hmac.new(key, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    # Every candidate is compared (no early exit on a match's position), each in constant time.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.lower())
    if not matched:
        raise WebhookVerificationError("the signature does not match the body")
    try:
        event = json.loads(raw)
    except ValueError as e:
        raise WebhookVerificationError("the body is not JSON") from e
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return cast(WebhookDelivery, event)  # signed by Tessera: the shape is its own
