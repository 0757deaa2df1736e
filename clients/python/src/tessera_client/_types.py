"""The client's own answer types: every wire type is generated from
``/openapi.json`` (``_models.py``); what is written here is what the document
cannot say. An answer that carries a secret (a tenant secret's value, a
connect link, a webhook's signing secret) is handed back with that value
wrapped in ``Secret``, so it prints as ``[SECRET]``: that wrapping is the
client's, not the wire's. Each is built from its generated wire type
(``SecretRead``, ``CreatedConnectSession``, ``WebhookCreated``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from ._models import SecretMetadataView, SecretVersionView, WebhookView
from ._secret import Secret

SecretVersion: TypeAlias = SecretVersionView
"""One kept version of a secret (metadata, never a value): the generated ``SecretVersionView``."""

SecretMetadata: TypeAlias = SecretMetadataView
"""``GET .../secrets/{path}?versions``: the generated ``SecretMetadataView``."""


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """One version of a tenant secret (``SecretRead`` on the wire): ``value``
    prints as ``[SECRET]``.

    ``kind`` is ``"value"`` for a single value (``SecretReadValue``) and
    ``"data"`` for a map of fields (``SecretReadData``, what the
    Vault-compatible API writes); ``value`` holds either.
    """

    path: str
    version: int
    created_at: str
    kind: Literal["value", "data"]
    value: Secret


@dataclass(frozen=True, slots=True)
class ConnectSession:
    """A new connect session (``CreatedConnectSession`` on the wire): send the
    person's browser to ``url.reveal()``. ``url`` and ``token`` are the link's
    credential, shown by Tessera only in this answer, and print as
    ``[SECRET]``."""

    id: str
    expires_at: str
    url: Secret
    token: Secret


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    """A new webhook and its signing secret (``WebhookCreated`` on the wire;
    ``whsec_...``, shown by Tessera only in this answer): keep
    ``secret.reveal_text()`` for ``verify_webhook``."""

    webhook: WebhookView
    secret: Secret
