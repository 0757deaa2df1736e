"""The credentials store, tool invocation on a real MCP server, and proxied
calls to an integration's API (a stand-in on loopback)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from conftest import Admin, Answer, StandIn, required_env

from tessera_client import ConflictError, NotFoundError, Tessera


def test_credentials_are_stored_shown_as_metadata_only_and_revoked(admin: Admin, tenant: str) -> None:
    github = admin.integration({"category": "code"})
    with Tessera(admin.url, admin.token) as tessera:
        stored = tessera.store_credentials(
            tenant, github, "ghp_py_access_1", refresh_token="ghr_py_refresh_1", expires_in=3600, scopes=["repo", "user"]
        )
        assert stored["success"] is True
        assert (stored["tenantId"], stored["integration"]) == (tenant, github)
        assert stored["expiresAt"] is not None

        meta = tessera.get_credentials(tenant, github)
        assert meta["hasCredentials"] is True and meta["hasRefreshToken"] is True
        assert meta["scopes"] == ["repo", "user"]
        assert "ghp_py_access_1" not in json.dumps(meta) and "ghr_py_refresh_1" not in json.dumps(meta)
        assert tessera.get_resolved(tenant, github)["accessToken"] == "ghp_py_access_1"

        revoked = tessera.revoke_credentials(tenant, github)
        assert revoked["success"] is True
        with pytest.raises(NotFoundError) as gone:
            tessera.get_credentials(tenant, github)
        assert gone.value.code == "credentials_not_found"


def test_a_tool_runs_on_the_mcp_server_with_the_tenants_token(admin: Admin, tenant: str) -> None:
    mcp_url = required_env("TESSERA_TEST_MCP_URL")
    everything = admin.integration({"mcp": {"url": mcp_url}})
    with Tessera(admin.url, admin.token) as tessera:
        tessera.store_credentials(tenant, everything, "mcp_py_token")
        result = tessera.invoke_tool(tenant, f"{everything}.echo", {"message": "roadmap"})
        assert (result["toolId"], result["integration"], result["tenantId"]) == (f"{everything}.echo", everything, tenant)
        assert result["result"]["content"][0]["text"] == "Echo: roadmap"

        bare = tessera.invoke_tool(tenant, "echo", {"message": "two"}, integration=everything)
        assert bare["result"]["content"][0]["text"] == "Echo: two"

        with pytest.raises(NotFoundError) as unknown:
            tessera.invoke_tool(tenant, f"{everything}.no-such-tool")
        assert unknown.value.code == "unknown_tool"

    plain = admin.integration({})
    admin.call("PUT", f"/tenants/{tenant}/integrations/{plain}/config", {"config": {}})
    with Tessera(admin.url, admin.token) as tessera, pytest.raises(ConflictError) as no_mcp:
        tessera.invoke_tool(tenant, f"{plain}.echo")
    assert no_mcp.value.code == "mcp_not_configured"


def test_a_proxied_call_reaches_the_api_with_the_tenants_credential_injected(
    admin: Admin, tenant: str, stand_in: Callable[..., StandIn]
) -> None:
    upstream = stand_in(default=Answer(200, b'{"traces": []}'))
    crm = admin.integration(
        {
            "configSchema": [{"key": "api_key", "type": "secret"}],
            "proxy": {"baseUrl": f"{upstream.url}/api", "auth": {"type": "bearer", "from": "config:api_key"}},
        }
    )
    admin.call("PUT", f"/tenants/{tenant}/integrations/{crm}/config", {"config": {"api_key": "crm_py_key_77"}})
    service_key = admin.key("tenant_service", tenant)
    with Tessera(admin.url, admin.token) as tessera:
        r = tessera.proxy(tenant, crm, "traces", params={"limit": "5"})
        assert r.status_code == 200 and r.json() == {"traces": []}
        seen = upstream.seen[-1]
        assert (seen.method, seen.path) == ("GET", "/api/traces?limit=5")
        assert seen.headers["authorization"] == "Bearer crm_py_key_77"
        assert "x-tenant-id" not in seen.headers

        posted = tessera.proxy(
            tenant, crm, "/items", method="POST", json={"name": "x"}, headers={"authorization": "Bearer x", "X-Trace": "7"}
        )
        assert posted.status_code == 200, "the caller's Authorization never replaces the client's token"
        assert upstream.seen[-1].method == "POST" and json.loads(upstream.seen[-1].body) == {"name": "x"}
        assert upstream.seen[-1].headers["x-trace"] == "7"
        assert upstream.seen[-1].headers["authorization"] == "Bearer crm_py_key_77"

        # Tessera's own refusal comes back as an answer too, with its error body.
        refused = tessera.proxy(tenant, crm, "a%2Fb")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_proxy_path"
        # A dot segment would be resolved before Tessera sees it (leaving /proxy/): refused here.
        for escape in ("../../api-keys", "a/%2e%2E/b", "a\\..\\b", "./x"):
            with pytest.raises(ValueError):
                tessera.proxy(tenant, crm, escape)
    with Tessera(admin.url, service_key) as own:
        assert own.proxy(None, crm, "traces").status_code == 200, "a tenant key names no tenant"
        assert own.proxy(tenant, crm, "traces").status_code == 200
