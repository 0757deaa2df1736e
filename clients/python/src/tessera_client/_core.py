"""Every operation once: the request it sends and how its answer is read.

``Tessera`` and ``AsyncTessera`` only send these ``Call``s (with retries)
and hand back what ``parse`` makes of the answer, so the two twins cannot
drift apart in what they ask or return.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote

import httpx

from ._errors import ApiError
from ._models import (
    ConnectSessionInput,
    ConnectSessionView,
    CreatedConnectSession,
    CredentialInput,
    CredentialView,
    EndUser,
    NewWebhook,
    ResolvedConnection,
    RevokedCredentials,
    Scope,
    SecretList,
    SecretReadData,
    SecretReadValue,
    SecretWritten,
    StoredCredentials,
    ToolInvocation,
    ToolResult,
    WebhookCreated,
    WebhookEventName,
    WebhookView,
)
from ._secret import JsonValue, ResolvedView, Secret
from ._types import ConnectSession, CreatedWebhook, SecretMetadata, SecretRecord

T = TypeVar("T")

# What `get_tenant_secret` answers None for: there is no readable value at that path (version).
NO_VALUE_CODES = frozenset({"secret_not_found", "version_not_found", "version_deleted", "version_destroyed"})

# Headers a proxied call may not set: the client's own.
RESERVED_HEADERS = frozenset({"authorization", "x-request-id", "x-tenant-id"})

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # An error answer turned into a value (or raised again).
    on_error: Callable[[ApiError], T] | None = None
    # Proxied answers are the upstream's own: handed back whatever their status.
    any_status: bool = False
    # 429/503 mean Tessera did nothing: retried. Proxied calls only when idempotent.
    retry_statuses: bool = True


def segment(name: str, value: str) -> str:
    """One path segment (a tenant id, an integration key, an id), escaped."""
    if value in ("", ".", ".."):
        raise ValueError(f"{name} must not be empty, '.' or '..'")
    return quote(value, safe="")


def secret_path(path: str) -> str:
    """A secret path: segments joined by '/', each escaped."""
    return "/".join(segment("each segment of a secret path", s) for s in path.split("/"))


def proxy_path(path: str) -> str:
    """The path of a proxied call, kept as written (escapes included: Tessera
    itself refuses encoded slashes and the like). A ``.`` or ``..`` segment,
    also percent-encoded, is refused here: URL handling would resolve it
    before Tessera sees it, and ``../../api-keys`` would leave ``/proxy/``
    and reach another route of the API with this client's key."""
    route = path.split("?", 1)[0]
    for part in route.replace("\\", "/").split("/"):
        if re.sub("%2e", ".", part, flags=re.IGNORECASE) in (".", ".."):
            raise ValueError("a proxied path may not have '.' or '..' segments")
    return quote(path.lstrip("/"), safe="/-._~!$&'()*+,;=:@%?")


def _json(response: httpx.Response) -> Any:
    return json.loads(response.content)


def _none(_: httpx.Response) -> None:
    return None


def resolved(tenant: str, integration: str) -> Call[ResolvedView]:
    def parse(r: httpx.Response) -> ResolvedView:
        body = cast(ResolvedConnection, _json(r))
        return ResolvedView(body["tenantId"], body["integration"], body["config"])

    return Call("GET", f"/tenants/{segment('tenant', tenant)}/integrations/{segment('integration', integration)}/resolved", parse)


def _record(r: httpx.Response) -> SecretRecord:
    # A SecretRead is one of the two; which one, its payload's name says
    # (mypy does not narrow a union of open TypedDicts on `in`).
    body = _json(r)
    if "data" in body:
        data = cast(SecretReadData, body)
        return SecretRecord(data["path"], data["version"], data["createdAt"], "data", Secret(data["data"]))
    value = cast(SecretReadValue, body)
    return SecretRecord(value["path"], value["version"], value["createdAt"], "value", Secret(value["value"]))


def _secrets(tenant: str, path: str) -> str:
    return f"/tenants/{segment('tenant', tenant)}/secrets/{secret_path(path)}"


def read_secret(tenant: str, path: str, version: int | None) -> Call[SecretRecord]:
    params = None if version is None else {"version": str(version)}
    return Call("GET", _secrets(tenant, path), _record, params=params)


def tenant_secret(tenant: str, key: str, version: int | None) -> Call[Secret | None]:
    def missing(e: ApiError) -> Secret | None:
        if e.status == 404 and e.code in NO_VALUE_CODES:
            return None
        raise e

    params = None if version is None else {"version": str(version)}
    return Call("GET", _secrets(tenant, key), lambda r: _record(r).value, params=params, on_error=missing)


def put_secret(
    tenant: str,
    path: str,
    value: JsonValue,
    data: Mapping[str, JsonValue] | None,
    cas: int | None,
    rotate_after_days: int | None,
) -> Call[SecretWritten]:
    if (value is None) == (data is None):
        raise ValueError("give exactly one of value (not None) and data")
    body: dict[str, Any] = {"value": value} if data is None else {"data": dict(data)}
    if cas is not None:
        body["cas"] = cas
    if rotate_after_days is not None:
        body["rotateAfterDays"] = rotate_after_days
    return Call("PUT", _secrets(tenant, path), lambda r: cast(SecretWritten, _json(r)), json=body)


def secret_versions(tenant: str, path: str) -> Call[SecretMetadata]:
    return Call("GET", _secrets(tenant, path), lambda r: cast(SecretMetadata, _json(r)), params={"versions": ""})


def list_secrets(tenant: str, prefix: str) -> Call[SecretList]:
    return Call(
        "GET", f"/tenants/{segment('tenant', tenant)}/secrets", lambda r: cast(SecretList, _json(r)), params={"prefix": prefix}
    )


def delete_secret(tenant: str, path: str, versions: Sequence[int] | None) -> Call[None]:
    params = None if versions is None else {"versions": ",".join(str(v) for v in versions)}
    return Call("DELETE", _secrets(tenant, path), _none, params=params)


def secret_action(tenant: str, path: str, action: str, versions: Sequence[int]) -> Call[None]:
    return Call("POST", f"{_secrets(tenant, path)}:{action}", _none, json={"versions": list(versions)})


def rollback_secret(tenant: str, path: str, version: int) -> Call[SecretWritten]:
    return Call(
        "POST", f"{_secrets(tenant, path)}:rollback", lambda r: cast(SecretWritten, _json(r)), json={"version": version}
    )


def _credentials(tenant: str, integration: str) -> str:
    return f"/tenants/{segment('tenant', tenant)}/integrations/{segment('integration', integration)}/credentials"


def store_credentials(
    tenant: str,
    integration: str,
    access_token: str,
    refresh_token: str | None,
    expires_in: int | None,
    expires_at: str | None,
    token_type: str | None,
    scopes: list[Scope] | str | None,
    create_tenant: bool | None,
) -> Call[StoredCredentials]:
    body: CredentialInput = {"accessToken": access_token}
    if refresh_token is not None:
        body["refreshToken"] = refresh_token
    if expires_in is not None:
        body["expiresIn"] = expires_in
    if expires_at is not None:
        body["expiresAt"] = expires_at
    if token_type is not None:
        body["tokenType"] = token_type
    if scopes is not None:
        body["scopes"] = scopes
    if create_tenant is not None:
        body["createTenant"] = create_tenant
    return Call("POST", _credentials(tenant, integration), lambda r: cast(StoredCredentials, _json(r)), json=body)


def get_credentials(tenant: str, integration: str) -> Call[CredentialView]:
    return Call("GET", _credentials(tenant, integration), lambda r: cast(CredentialView, _json(r)))


def revoke_credentials(tenant: str, integration: str) -> Call[RevokedCredentials]:
    return Call("DELETE", _credentials(tenant, integration), lambda r: cast(RevokedCredentials, _json(r)))


def invoke_tool(
    tenant: str, tool_id: str, parameters: Mapping[str, JsonValue] | None, integration: str | None
) -> Call[ToolResult]:
    body: ToolInvocation = {"toolId": tool_id, "tenantId": tenant}
    if parameters is not None:
        body["parameters"] = dict(parameters)
    if integration is not None:
        body["integration"] = integration
    return Call("POST", "/api/v1/tools/invoke", lambda r: cast(ToolResult, _json(r)), json=body)


def proxy(
    tenant: str | None,
    integration: str,
    path: str,
    method: str,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    content: bytes | str | None,
    json_body: Any,
) -> Call[httpx.Response]:
    method = method.upper()
    # The Authorization header is this client's Tessera token (Tessera never passes it upstream).
    sent = {k: v for k, v in (headers or {}).items() if k.lower() not in RESERVED_HEADERS}
    if tenant is not None:
        sent["X-Tenant-Id"] = tenant
    body = content.encode() if isinstance(content, str) else content
    if json_body is not None:
        if body is not None:
            raise ValueError("give content or json, not both")
        body = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    upstream = proxy_path(path)
    return Call(
        method,
        f"/proxy/{segment('integration', integration)}/{upstream}",
        lambda r: r,
        params=params,
        content=body,
        headers=sent,
        any_status=True,
        retry_statuses=method in IDEMPOTENT_METHODS,
    )


def create_connect_session(
    tenant: str,
    integrations: Sequence[str] | None,
    redirect_uri: str | None,
    expires_in: int | None,
    end_user: EndUser | None,
) -> Call[ConnectSession]:
    body: ConnectSessionInput = {"tenantId": tenant}
    if integrations is not None:
        body["integrations"] = list(integrations)
    if redirect_uri is not None:
        body["redirectUri"] = redirect_uri
    if expires_in is not None:
        body["expiresIn"] = expires_in
    if end_user is not None:
        body["endUser"] = end_user

    def parse(r: httpx.Response) -> ConnectSession:
        b = cast(CreatedConnectSession, _json(r))
        return ConnectSession(b["id"], b["expiresAt"], Secret(b["url"]), Secret(b["token"]))

    return Call("POST", "/connect/sessions", parse, json=body)


def get_connect_session(session_id: str) -> Call[ConnectSessionView]:
    return Call("GET", f"/connect/sessions/{segment('session id', session_id)}", lambda r: cast(ConnectSessionView, _json(r)))


def end_connect_session(session_id: str) -> Call[None]:
    return Call("DELETE", f"/connect/sessions/{segment('session id', session_id)}", _none)


def create_webhook(tenant: str, url: str, events: Sequence[WebhookEventName]) -> Call[CreatedWebhook]:
    body: NewWebhook = {"url": url, "events": list(events)}

    def parse(r: httpx.Response) -> CreatedWebhook:
        b = cast(WebhookCreated, _json(r))
        secret = Secret(b["secret"])
        # A WebhookCreated is a WebhookView and the secret: the view is kept without it.
        webhook = cast(WebhookView, {k: v for k, v in b.items() if k != "secret"})
        return CreatedWebhook(webhook, secret)

    return Call("POST", f"/tenants/{segment('tenant', tenant)}/webhooks", parse, json=body)


def delete_webhook(tenant: str, webhook_id: str) -> Call[None]:
    return Call("DELETE", f"/tenants/{segment('tenant', tenant)}/webhooks/{segment('webhook id', webhook_id)}", _none)
