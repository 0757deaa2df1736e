"""The few answers ``/openapi.json`` describes in words only (no schema yet),
typed here once from the server's own structs; every other type is generated
(``_models.py``). When the document gains these schemas, generate them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from ._models import WebhookView
from ._secret import Secret


class SecretVersion(TypedDict):
    """One kept version of a secret (metadata, never a value)."""

    version: int
    createdAt: str
    createdBy: str
    deletedAt: str | None
    destroyed: bool


class SecretMetadata(TypedDict):
    """``GET .../secrets/{path}?versions``: a secret's versions, never values."""

    path: str
    currentVersion: int
    maxVersions: int
    createdAt: str
    updatedAt: str
    rotateAfterDays: int | None
    versions: list[SecretVersion]


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """One version of a tenant secret: ``value`` prints as ``[SECRET]``.

    ``kind`` is ``"value"`` for a single value (``{"value": ...}``) and
    ``"data"`` for a map of fields (``{"data": {...}}``, what the
    Vault-compatible API writes); ``value`` holds either.
    """

    path: str
    version: int
    created_at: str
    kind: Literal["value", "data"]
    value: Secret


@dataclass(frozen=True, slots=True)
class ConnectSession:
    """A new connect session: send the person's browser to
    ``url.reveal()``. ``url`` and ``token`` are the link's credential, shown
    by Tessera only in this answer, and print as ``[SECRET]``."""

    id: str
    expires_at: str
    url: Secret
    token: Secret


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    """A new webhook and its signing secret (``whsec_...``, shown by Tessera
    only in this answer): keep ``secret.reveal_text()`` for ``verify_webhook``."""

    webhook: WebhookView
    secret: Secret
