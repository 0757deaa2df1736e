"""``AsyncTessera``: the same methods as ``Tessera``, awaited, end to end."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
from conftest import Admin, Answer, StandIn, required_env

from tessera_client import AsyncTessera, ConflictError, NotFoundError, RequestTimeoutError, Tessera, verify_webhook

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "aclose")
    }


async def test_the_twins_have_the_same_methods_with_the_same_parameters() -> None:
    sync, asynchronous = public(Tessera), public(AsyncTessera)
    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        assert list(signature.parameters.values()) == list(asynchronous[name].parameters.values()), name
        assert signature.return_annotation == asynchronous[name].return_annotation, name
        is_async = inspect.iscoroutinefunction(getattr(AsyncTessera, name))
        assert is_async == (name != "clear_cache"), name


async def test_every_call_works_awaited(admin: Admin, tenant: str, stand_in: Callable[..., StandIn]) -> None:
    upstream = stand_in()
    crm = admin.integration(
        {
            "configSchema": [{"key": "base_url", "type": "string"}, {"key": "api_key", "type": "secret"}],
            "proxy": {"baseUrl": upstream.url, "auth": {"type": "header", "name": "X-Api-Key", "from": "config:api_key"}},
            "mcp": {"url": required_env("TESSERA_TEST_MCP_URL")},
        }
    )
    admin.call("PUT", f"/tenants/{tenant}/integrations/{crm}/config", {"config": {"api_key": "crm_async_key"}})
    async with AsyncTessera(admin.url, admin.token, resolved_cache_seconds=30) as tessera:
        view = await tessera.get_resolved(tenant, crm)
        assert view["api_key"] == "crm_async_key" and "crm_async_key" not in repr(view)
        assert (await tessera.get_resolved(tenant, crm)) is view, "served from the cache"

        assert (await tessera.put_tenant_secret(tenant, "STRIPE_SECRET_KEY", "sk_async_1", cas=0))["version"] == 1
        with pytest.raises(ConflictError) as stale:
            await tessera.put_tenant_secret(tenant, "STRIPE_SECRET_KEY", "sk_async_2", cas=0)
        assert stale.value.code == "cas_mismatch"
        assert (s := await tessera.get_tenant_secret(tenant, "STRIPE_SECRET_KEY")) and s.reveal() == "sk_async_1"
        assert (await tessera.read_secret(tenant, "STRIPE_SECRET_KEY")).version == 1
        assert (await tessera.secret_versions(tenant, "STRIPE_SECRET_KEY"))["currentVersion"] == 1
        assert (await tessera.list_secrets(tenant))["paths"] == ["STRIPE_SECRET_KEY"]
        await tessera.put_tenant_secret(tenant, "STRIPE_SECRET_KEY", "sk_async_2")
        await tessera.delete_secret(tenant, "STRIPE_SECRET_KEY")
        assert await tessera.get_tenant_secret(tenant, "STRIPE_SECRET_KEY") is None
        await tessera.undelete_secret(tenant, "STRIPE_SECRET_KEY", [2])
        await tessera.destroy_secret_versions(tenant, "STRIPE_SECRET_KEY", [1])
        assert (await tessera.rollback_secret(tenant, "STRIPE_SECRET_KEY", 2))["version"] == 3

        receiver = stand_in()
        hook = await tessera.create_webhook(tenant, receiver.url, ["credential.stored", "credential.revoked"])
        stored = await tessera.store_credentials(tenant, crm, "crm_async_access", scopes="read write")
        assert stored["success"] is True
        assert (await tessera.get_resolved(tenant, crm))["accessToken"] == "crm_async_access", "the entry was dropped"
        assert (await tessera.get_credentials(tenant, crm))["scopes"] == ["read", "write"]
        tool = await tessera.invoke_tool(tenant, f"{crm}.echo", {"message": "async"})
        assert tool["result"]["content"][0]["text"] == "Echo: async"
        proxied = await tessera.proxy(tenant, crm, "ping")
        assert proxied.status_code == 200 and upstream.seen[-1].headers["x-api-key"] == "crm_async_key"
        assert (await tessera.revoke_credentials(tenant, crm))["success"] is True
        got = receiver.wait_for(lambda s: s.headers.get("tessera-event") == "credential.revoked")
        assert verify_webhook(hook.secret, got.body, got.headers["tessera-signature"])["event"] == "credential.revoked"
        await tessera.delete_webhook(tenant, hook.webhook["id"])

        session = await tessera.create_connect_session(tenant, integrations=[crm])
        assert (await tessera.get_connect_session(session.id))["status"] == "pending"
        await tessera.end_connect_session(session.id)
        with pytest.raises(NotFoundError) as ended:
            await tessera.get_connect_session(session.id)
        assert ended.value.code == "connect_session_not_found"
        tessera.clear_cache()


async def test_429_is_retried_and_a_slow_answer_times_out_awaited(stand_in: Callable[..., StandIn]) -> None:
    ok = Answer(200, b'{"tenantId": "acme", "paths": []}')
    limited = Answer(429, b'{"error": {"code": "rate_limited", "message": "slow"}}', {"Retry-After": "1"})
    server = stand_in([limited], ok)
    async with AsyncTessera(server.url, "tsr_stand_in") as tessera:
        assert (await tessera.list_secrets("acme"))["paths"] == []
    assert len(server.seen) == 2 and server.seen[1].at - server.seen[0].at >= 0.95

    slow = stand_in(default=Answer(200, ok.body, delay=2.0))
    async with AsyncTessera(slow.url, "tsr_stand_in", timeout=0.3) as tessera:
        with pytest.raises(RequestTimeoutError):
            await tessera.list_secrets("acme")
