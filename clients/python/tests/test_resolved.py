"""The resolved view, and its optional in-process cache."""

from __future__ import annotations

import pickle
import time

import pytest
from conftest import Admin

from tessera_client import MAX_RESOLVED_CACHE_SECONDS, NotFoundError, Tessera


def langfuse(admin: Admin, tenant: str, secret_key: str) -> str:
    """An integration like Langfuse: a default base URL, the tenant's own keys."""
    key = admin.integration(
        {
            "configSchema": [
                {"key": "base_url", "type": "string", "required": True},
                {"key": "public_key", "type": "string"},
                {"key": "secret_key", "type": "secret", "required": True},
            ]
        }
    )
    admin.call("PUT", f"/integrations/{key}/defaults", {"config": {"base_url": "https://cloud.langfuse.com"}})
    admin.call(
        "PUT",
        f"/tenants/{tenant}/integrations/{key}/config",
        {"config": {"public_key": "pk_lf_acme", "secret_key": secret_key}},
    )
    return key


def resolves(admin: Admin, tenant: str) -> list[dict[str, object]]:
    return [e for e in admin.audit("config.resolve") if e.get("tenantId") == tenant]


def test_the_resolved_view_merges_defaults_overrides_and_credentials(admin: Admin, tenant: str) -> None:
    key = langfuse(admin, tenant, "sk_lf_resolved_1")
    with Tessera(admin.url, admin.token) as tessera:
        view = tessera.get_resolved(tenant, key)
        assert (view.tenant_id, view.integration) == (tenant, key)
        assert view["base_url"] == "https://cloud.langfuse.com"
        assert view["secret_key"] == "sk_lf_resolved_1"
        assert dict(view) == {
            "base_url": "https://cloud.langfuse.com",
            "public_key": "pk_lf_acme",
            "secret_key": "sk_lf_resolved_1",
        }
        assert view.secret("secret_key").reveal() == "sk_lf_resolved_1"
        for shown in (repr(view), str(view), f"{view}"):
            assert "sk_lf_resolved_1" not in shown and "'secret_key': '[SECRET]'" in shown
        with pytest.raises(TypeError):
            pickle.dumps(view)

        tessera.store_credentials(tenant, key, "lf_access_token_1")
        with_token = tessera.get_resolved(tenant, key)
        assert with_token["accessToken"] == "lf_access_token_1"
        assert with_token["tokenType"] == "bearer"

        with pytest.raises(NotFoundError) as unknown:
            tessera.get_resolved(tenant, "no-such-integration")
        assert unknown.value.code in ("integration_not_found", "connection_not_found")


def test_the_cache_serves_a_view_for_at_most_its_maximum_age(admin: Admin, tenant: str) -> None:
    key = langfuse(admin, tenant, "sk_lf_cached_1")
    with Tessera(admin.url, admin.token, resolved_cache_seconds=1.5) as tessera:
        assert tessera.get_resolved(tenant, key)["secret_key"] == "sk_lf_cached_1"
        fetched = time.monotonic()
        admin.call("PUT", f"/tenants/{tenant}/integrations/{key}/config", {"config": {"secret_key": "sk_lf_cached_2"}})

        # Within the maximum age the cached view is served (the change is not
        # seen), and Tessera is not asked: its audit log shows one read.
        cached = tessera.get_resolved(tenant, key)
        if time.monotonic() - fetched < 1.5:
            assert cached["secret_key"] == "sk_lf_cached_1"
            assert len(resolves(admin, tenant)) == 1
        # ... unless asked for a fresh one; and never once the age is past.
        assert tessera.get_resolved(tenant, key, fresh=True)["secret_key"] == "sk_lf_cached_2"
        admin.call("PUT", f"/tenants/{tenant}/integrations/{key}/config", {"config": {"secret_key": "sk_lf_cached_3"}})
        time.sleep(1.6)
        assert tessera.get_resolved(tenant, key)["secret_key"] == "sk_lf_cached_3"

        # Credentials written through the same client drop the entry at once.
        tessera.store_credentials(tenant, key, "lf_access_cached")
        assert tessera.get_resolved(tenant, key)["accessToken"] == "lf_access_cached"
        tessera.revoke_credentials(tenant, key)
        assert "accessToken" not in tessera.get_resolved(tenant, key)


def test_without_the_cache_every_read_reaches_tessera(admin: Admin, tenant: str) -> None:
    key = langfuse(admin, tenant, "sk_lf_nocache_1")
    with Tessera(admin.url, admin.token) as tessera:
        assert tessera.get_resolved(tenant, key)["secret_key"] == "sk_lf_nocache_1"
        admin.call("PUT", f"/tenants/{tenant}/integrations/{key}/config", {"config": {"secret_key": "sk_lf_nocache_2"}})
        assert tessera.get_resolved(tenant, key)["secret_key"] == "sk_lf_nocache_2"


def test_the_cache_age_is_bounded() -> None:
    assert MAX_RESOLVED_CACHE_SECONDS == 60
    with pytest.raises(ValueError):
        Tessera("http://127.0.0.1:1", "tsr_x", resolved_cache_seconds=61)
    with pytest.raises(ValueError):
        Tessera("http://127.0.0.1:1", "tsr_x", resolved_cache_seconds=-1)
