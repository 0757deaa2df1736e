"""``Tessera``: the blocking client. ``AsyncTessera`` is its twin, method for method."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _core as ops
from ._base import DEFAULT_TIMEOUT, Settings, finish, new_request_id, retry_delay
from ._core import Call
from ._errors import RequestTimeoutError, TransportError
from ._models import (
    ConnectSessionView,
    CredentialView,
    EndUser,
    RevokedCredentials,
    Scope,
    SecretList,
    SecretWritten,
    StoredCredentials,
    ToolResult,
    WebhookEventName,
)
from ._secret import JsonValue, ResolvedView, Secret
from ._types import ConnectSession, CreatedWebhook, SecretMetadata, SecretRecord

T = TypeVar("T")


class Tessera:
    """A client of one Tessera server, with one API key.

    ``timeout`` is seconds per try; ``max_retries`` how often a 429 or 503
    (or a connection that could not be made) is tried again, waiting what
    ``Retry-After`` says or backing off from 0.5 s; ``resolved_cache_seconds``
    (0 to 60, default 0: off) how long ``get_resolved`` may serve a view from
    memory. Use it as a context manager, or ``close()`` it.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        resolved_cache_seconds: float = 0.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._settings = Settings(base_url, token, timeout, max_retries, resolved_cache_seconds)
        self._own_http = http_client is None
        self._http = http_client or httpx.Client(follow_redirects=False)

    def __repr__(self) -> str:
        return f"Tessera(base_url={self._settings.base_url!r})"

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> Tessera:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        s = self._settings
        request_id = new_request_id()
        headers = {**s.headers, **call.headers, "X-Request-Id": request_id}
        retry = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    s.base_url + call.path,
                    params=call.params,
                    json=call.json,
                    content=call.content,
                    headers=headers,
                    timeout=s.timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                # Nothing reached the server: safe to try again for any method.
                delay = s.retry.delay(retry, None)
                if delay is None:
                    raise (RequestTimeoutError if isinstance(e, httpx.TimeoutException) else TransportError)(
                        f"cannot connect to {s.base_url}: {e}"
                    ) from e
            except httpx.TimeoutException as e:
                raise RequestTimeoutError(f"no answer from {s.base_url} within {s.timeout.read} s") from e
            except httpx.TransportError as e:
                raise TransportError(f"the request to {s.base_url} failed: {e}") from e
            else:
                delay = retry_delay(s, call, response, retry)
                if delay is None:
                    return finish(call, response, request_id)
            time.sleep(delay)
            retry += 1

    # --- Resolved views -------------------------------------------------

    def get_resolved(self, tenant: str, integration: str, *, fresh: bool = False) -> ResolvedView:
        """The connection's resolved view: defaults, the tenant's overrides and
        its credentials merged, secrets decrypted (an expired OAuth token is
        refreshed first). Audited by Tessera. From the in-process cache when
        it is on and holds a view younger than ``resolved_cache_seconds``,
        unless ``fresh``."""
        cache = self._settings.cache
        if not fresh and (hit := cache.get(tenant, integration)) is not None:
            return hit
        fetched_at = time.monotonic()
        view = self._run(ops.resolved(tenant, integration))
        cache.put(tenant, integration, view, fetched_at)
        return view

    def clear_cache(self) -> None:
        """Forgets every cached resolved view."""
        self._settings.cache.clear()

    # --- Tenant secrets -------------------------------------------------

    def get_tenant_secret(self, tenant: str, key: str, *, version: int | None = None) -> Secret | None:
        """A tenant secret's value (the newest version, or ``version``), or
        None when there is none to read there (no such secret, or that version
        deleted or destroyed). Other refusals raise."""
        return self._run(ops.tenant_secret(tenant, key, version))

    def read_secret(self, tenant: str, path: str, *, version: int | None = None) -> SecretRecord:
        """One version of a secret with its metadata; a missing one raises ``NotFoundError``."""
        return self._run(ops.read_secret(tenant, path, version))

    def put_tenant_secret(
        self,
        tenant: str,
        key: str,
        value: JsonValue = None,
        *,
        data: Mapping[str, JsonValue] | None = None,
        cas: int | None = None,
        rotate_after_days: int | None = None,
    ) -> SecretWritten:
        """Writes a new version: ``value`` (any JSON but null), or ``data`` (a
        map of fields). With ``cas``, only if the newest version is ``cas``
        (0: only if the secret is new); otherwise ``ConflictError`` with code
        ``cas_mismatch`` and nothing written."""
        return self._run(ops.put_secret(tenant, key, value, data, cas, rotate_after_days))

    def secret_versions(self, tenant: str, path: str) -> SecretMetadata:
        """A secret's metadata and kept versions (never values)."""
        return self._run(ops.secret_versions(tenant, path))

    def list_secrets(self, tenant: str, prefix: str = "") -> SecretList:
        """The tenant's secret paths under ``prefix`` (never values)."""
        return self._run(ops.list_secrets(tenant, prefix))

    def delete_secret(self, tenant: str, path: str, *, versions: Sequence[int] | None = None) -> None:
        """Soft-deletes the newest version (or ``versions``); ``undelete_secret`` restores."""
        self._run(ops.delete_secret(tenant, path, versions))

    def undelete_secret(self, tenant: str, path: str, versions: Sequence[int]) -> None:
        """Restores soft-deleted versions."""
        self._run(ops.secret_action(tenant, path, "undelete", versions))

    def destroy_secret_versions(self, tenant: str, path: str, versions: Sequence[int]) -> None:
        """Erases versions for good."""
        self._run(ops.secret_action(tenant, path, "destroy", versions))

    def rollback_secret(self, tenant: str, path: str, version: int) -> SecretWritten:
        """Copies ``version`` as the new newest version."""
        return self._run(ops.rollback_secret(tenant, path, version))

    # --- Credentials ----------------------------------------------------

    def store_credentials(
        self,
        tenant: str,
        integration: str,
        access_token: str,
        *,
        refresh_token: str | None = None,
        expires_in: int | None = None,
        expires_at: str | None = None,
        token_type: str | None = None,
        scopes: list[Scope] | str | None = None,
        create_tenant: bool | None = None,
    ) -> StoredCredentials:
        """Stores a connection's tokens (encrypted under the tenant's key); ``scopes``
        is a list, or one string of space-separated scopes."""
        try:
            return self._run(
                ops.store_credentials(
                    tenant, integration, access_token, refresh_token, expires_in, expires_at, token_type, scopes, create_tenant
                )
            )
        finally:
            self._settings.cache.drop(tenant, integration)

    def get_credentials(self, tenant: str, integration: str) -> CredentialView:
        """The stored credentials' metadata (never a token)."""
        return self._run(ops.get_credentials(tenant, integration))

    def revoke_credentials(self, tenant: str, integration: str) -> RevokedCredentials:
        """Deletes the tokens (and revokes them at the provider when it can)."""
        try:
            return self._run(ops.revoke_credentials(tenant, integration))
        finally:
            self._settings.cache.drop(tenant, integration)

    # --- Gateway: tools and proxy ---------------------------------------

    def invoke_tool(
        self,
        tenant: str,
        tool_id: str,
        parameters: Mapping[str, JsonValue] | None = None,
        *,
        integration: str | None = None,
    ) -> ToolResult:
        """Calls an MCP tool (``<integration>.<tool>``) with the tenant's credential injected."""
        return self._run(ops.invoke_tool(tenant, tool_id, parameters, integration))

    def proxy(
        self,
        tenant: str | None,
        integration: str,
        path: str,
        *,
        method: str = "GET",
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Calls the integration's API through Tessera, which injects the
        tenant's credential (``tenant`` None: the key's own tenant). The
        answer is the upstream's own and is returned whatever its status;
        Tessera's own refusals carry its JSON error body. Idempotent methods
        are retried on 429/503."""
        return self._run(ops.proxy(tenant, integration, path, method, params, headers, content, json))

    # --- Hosted Connect -------------------------------------------------

    def create_connect_session(
        self,
        tenant: str,
        *,
        integrations: Sequence[str] | None = None,
        redirect_uri: str | None = None,
        expires_in: int | None = None,
        end_user: EndUser | None = None,
    ) -> ConnectSession:
        """A short-lived link where the tenant's user connects integrations."""
        return self._run(ops.create_connect_session(tenant, integrations, redirect_uri, expires_in, end_user))

    def get_connect_session(self, session_id: str) -> ConnectSessionView:
        """A session's status and what it connected."""
        return self._run(ops.get_connect_session(session_id))

    def end_connect_session(self, session_id: str) -> None:
        """Ends a session: its link stops working now."""
        self._run(ops.end_connect_session(session_id))

    # --- Webhooks -------------------------------------------------------

    def create_webhook(self, tenant: str, url: str, events: Sequence[WebhookEventName]) -> CreatedWebhook:
        """Subscribes ``url`` to events; the answer holds the signing secret, once."""
        return self._run(ops.create_webhook(tenant, url, events))

    def delete_webhook(self, tenant: str, webhook_id: str) -> None:
        """Removes a webhook."""
        self._run(ops.delete_webhook(tenant, webhook_id))
