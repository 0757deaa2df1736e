"""Tenant secrets: values that print as [SECRET], versions, check-and-set,
delete/undelete/destroy/rollback, listing."""

from __future__ import annotations

import json
import pickle

import pytest
from conftest import Admin

from tessera_client import ConflictError, NotFoundError, Secret, Tessera


def test_a_written_secret_reads_back_and_never_prints_itself(admin: Admin, tenant: str) -> None:
    with Tessera(admin.url, admin.token) as tessera:
        written = tessera.put_tenant_secret(tenant, "stripe/STRIPE_SECRET_KEY", "sk_live_py_4242")
        assert written["version"] == 1 and written["path"] == "stripe/STRIPE_SECRET_KEY"

        secret = tessera.get_tenant_secret(tenant, "stripe/STRIPE_SECRET_KEY")
        assert secret is not None
        assert secret.reveal() == "sk_live_py_4242"
        assert secret.reveal_text() == "sk_live_py_4242"
        for shown in (str(secret), repr(secret), f"{secret}", "%s" % secret, f"{secret!r}", str([secret])):
            assert "sk_live_py_4242" not in shown and "[SECRET]" in shown
        with pytest.raises(TypeError):
            json.dumps(secret)
        with pytest.raises(TypeError):
            pickle.dumps(secret)

        record = tessera.read_secret(tenant, "stripe/STRIPE_SECRET_KEY")
        assert (record.path, record.version, record.kind) == ("stripe/STRIPE_SECRET_KEY", 1, "value")
        assert record.value.reveal() == "sk_live_py_4242"
        assert "sk_live_py_4242" not in repr(record)


def test_check_and_set_writes_only_over_the_version_named(admin: Admin, tenant: str) -> None:
    with Tessera(admin.url, admin.token) as tessera:
        assert tessera.put_tenant_secret(tenant, "sendgrid/API_KEY", "SG.one", cas=0)["version"] == 1
        with pytest.raises(ConflictError) as refused:
            tessera.put_tenant_secret(tenant, "sendgrid/API_KEY", "SG.lost", cas=0)
        assert refused.value.status == 409
        assert refused.value.code == "cas_mismatch"
        assert refused.value.request_id  # the X-Request-Id the server logged and audited

        assert tessera.put_tenant_secret(tenant, "sendgrid/API_KEY", "SG.two", cas=1)["version"] == 2
        with pytest.raises(ConflictError) as stale:
            tessera.put_tenant_secret(tenant, "sendgrid/API_KEY", "SG.stale", cas=1)
        assert stale.value.code == "cas_mismatch"

        current = tessera.get_tenant_secret(tenant, "sendgrid/API_KEY")
        first = tessera.get_tenant_secret(tenant, "sendgrid/API_KEY", version=1)
        assert current is not None and current.reveal() == "SG.two"
        assert first is not None and first.reveal() == "SG.one"


def test_versions_delete_undelete_destroy_and_rollback(admin: Admin, tenant: str) -> None:
    with Tessera(admin.url, admin.token) as tessera:
        for value in ("v-one", "v-two", "v-three"):
            tessera.put_tenant_secret(tenant, "app/TOKEN", value, rotate_after_days=90)
        meta = tessera.secret_versions(tenant, "app/TOKEN")
        assert meta["currentVersion"] == 3
        assert meta["rotateAfterDays"] == 90
        assert [v["version"] for v in meta["versions"]] == [1, 2, 3]
        assert "v-one" not in json.dumps(meta)

        tessera.delete_secret(tenant, "app/TOKEN")
        assert tessera.get_tenant_secret(tenant, "app/TOKEN") is None, "the newest version is deleted"
        with pytest.raises(NotFoundError) as deleted:
            tessera.read_secret(tenant, "app/TOKEN")
        assert deleted.value.code == "version_deleted"
        tessera.undelete_secret(tenant, "app/TOKEN", [3])
        assert (s := tessera.get_tenant_secret(tenant, "app/TOKEN")) is not None and s.reveal() == "v-three"

        tessera.destroy_secret_versions(tenant, "app/TOKEN", [1])
        assert tessera.get_tenant_secret(tenant, "app/TOKEN", version=1) is None
        assert tessera.secret_versions(tenant, "app/TOKEN")["versions"][0]["destroyed"] is True

        rolled = tessera.rollback_secret(tenant, "app/TOKEN", 2)
        assert rolled["version"] == 4
        assert (s := tessera.get_tenant_secret(tenant, "app/TOKEN")) is not None and s.reveal() == "v-two"

        tessera.delete_secret(tenant, "app/TOKEN", versions=[2, 4])
        assert [v["deletedAt"] is not None for v in tessera.secret_versions(tenant, "app/TOKEN")["versions"]] == [
            False,
            True,
            False,
            True,
        ]


def test_a_map_of_fields_is_a_data_secret_and_listing_shows_paths_only(admin: Admin, tenant: str) -> None:
    with Tessera(admin.url, admin.token) as tessera:
        tessera.put_tenant_secret(tenant, "stripe/api", data={"key": "sk_live_map", "webhook": "whsec_map"})
        tessera.put_tenant_secret(tenant, "stripe/other", "x")
        tessera.put_tenant_secret(tenant, "sendgrid/key", "y")
        record = tessera.read_secret(tenant, "stripe/api")
        assert record.kind == "data"
        assert record.value.reveal() == {"key": "sk_live_map", "webhook": "whsec_map"}
        with pytest.raises(TypeError):
            record.value.reveal_text()

        listed = tessera.list_secrets(tenant, "stripe/")
        assert listed == {"tenantId": tenant, "paths": ["stripe/api", "stripe/other"]}
        assert "sk_live_map" not in json.dumps(tessera.list_secrets(tenant))

        with pytest.raises(ValueError):
            tessera.put_tenant_secret(tenant, "stripe/api", "v", data={"k": "v"})


def test_a_missing_secret_is_none_but_a_missing_tenant_raises(admin: Admin, tenant: str) -> None:
    with Tessera(admin.url, admin.token) as tessera:
        assert tessera.get_tenant_secret(tenant, "NOT_THERE") is None
        with pytest.raises(NotFoundError) as missing:
            tessera.read_secret(tenant, "NOT_THERE")
        assert missing.value.code == "secret_not_found"
        with pytest.raises(NotFoundError) as no_tenant:
            tessera.get_tenant_secret("no-such-tenant-here", "STRIPE_SECRET_KEY")
        assert no_tenant.value.code == "tenant_not_found"
        with pytest.raises(ValueError):
            tessera.get_tenant_secret(tenant, "../api-keys")


def test_a_tenant_key_reads_its_own_tenant_and_another_tenant_is_not_found(admin: Admin, tenant: str) -> None:
    other = admin.tenant()
    with Tessera(admin.url, admin.token) as root:
        root.put_tenant_secret(tenant, "STRIPE_SECRET_KEY", "sk_own")
        root.put_tenant_secret(other, "STRIPE_SECRET_KEY", "sk_other")
    with Tessera(admin.url, admin.key("tenant_service", tenant)) as service:
        assert (s := service.get_tenant_secret(tenant, "STRIPE_SECRET_KEY")) is not None and s.reveal() == "sk_own"
        with pytest.raises(NotFoundError) as elsewhere:
            service.get_tenant_secret(other, "STRIPE_SECRET_KEY")
        assert elsewhere.value.code == "tenant_not_found"


def test_secret_values_wrap_any_json_value() -> None:
    assert Secret({"a": [1, 2]}).reveal() == {"a": [1, 2]}
    assert repr(Secret(42)) == "Secret('[SECRET]')"
