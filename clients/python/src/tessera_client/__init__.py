"""Client for Tessera, the multi-tenant vault for integration configuration
and credentials: ``Tessera`` (blocking) and ``AsyncTessera`` (asyncio), on
httpx. Values Tessera hands out decrypted print as ``[SECRET]``
(``Secret.reveal()`` returns them); errors carry the API's ``code``."""

from ._async_client import AsyncTessera
from ._base import VERSION as __version__
from ._cache import MAX_RESOLVED_CACHE_SECONDS
from ._client import Tessera
from ._errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    TesseraError,
    TransportError,
    UnavailableError,
    UnprocessableError,
    UpstreamError,
    WebhookVerificationError,
)
from ._models import ErrorCode, WebhookDelivery, WebhookEventName
from ._secret import JsonValue, ResolvedView, Secret
from ._types import ConnectSession, CreatedWebhook, SecretMetadata, SecretRecord, SecretVersion
from ._webhooks import DEFAULT_TOLERANCE_SECONDS, WebhookEvent, verify_webhook

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_RESOLVED_CACHE_SECONDS",
    "ApiError",
    "AsyncTessera",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectSession",
    "CreatedWebhook",
    "ErrorCode",
    "JsonValue",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResolvedView",
    "Secret",
    "SecretMetadata",
    "SecretRecord",
    "SecretVersion",
    "Tessera",
    "TesseraError",
    "TransportError",
    "UnavailableError",
    "UnprocessableError",
    "UpstreamError",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
