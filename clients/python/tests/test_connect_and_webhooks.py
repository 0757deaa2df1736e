"""Hosted Connect sessions, and webhook deliveries from Tessera checked with
``verify_webhook``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from conftest import Admin, StandIn

from tessera_client import NotFoundError, Secret, Tessera, WebhookVerificationError, verify_webhook


def test_a_connect_session_is_made_shown_once_read_and_ended(admin: Admin, tenant: str) -> None:
    github = admin.integration({})
    with Tessera(admin.url, admin.token) as tessera:
        session = tessera.create_connect_session(
            tenant, integrations=[github], expires_in=600, end_user={"id": "user-42", "email": "ada@example.com"}
        )
        assert session.id.startswith("cs_")
        url = session.url.reveal_text()
        assert url.startswith(admin.url + "/connect/") and session.token.reveal_text() in url
        assert session.token.reveal_text() not in repr(session) and "[SECRET]" in repr(session)

        view = tessera.get_connect_session(session.id)
        assert view["status"] == "pending" and view["tenantId"] == tenant
        assert view["integrations"] == [github]
        assert view["endUser"] == {"id": "user-42", "email": "ada@example.com"}
        assert session.token.reveal_text() not in json.dumps(view)

        tessera.end_connect_session(session.id)
        with pytest.raises(NotFoundError) as ended:
            tessera.get_connect_session(session.id)
        assert ended.value.code == "connect_session_not_found"


def test_a_real_delivery_verifies_and_a_tampered_or_stale_one_does_not(
    admin: Admin, tenant: str, stand_in: Callable[..., StandIn]
) -> None:
    receiver = stand_in()
    crm = admin.integration({})
    with Tessera(admin.url, admin.token) as tessera:
        created = tessera.create_webhook(tenant, f"{receiver.url}/hooks/tessera", ["credential.stored"])
        secret = created.secret
        assert secret.reveal_text().startswith("whsec_") and "whsec_" not in repr(created)
        assert created.webhook["events"] == ["credential.stored"]
        tessera.store_credentials(tenant, crm, "crm_webhook_token")

        got = receiver.wait_for(lambda s: s.headers.get("tessera-event") == "credential.stored")
        signature = got.headers["tessera-signature"]
        event = verify_webhook(secret, got.body, signature)
        assert event["event"] == "credential.stored" and event["tenantId"] == tenant
        assert event["id"] == got.headers["tessera-delivery"]
        assert event["data"]["integration"] == crm
        assert verify_webhook(secret.reveal_text(), got.body.decode(), signature)["id"] == event["id"]

        t = int(signature.split(",")[0].removeprefix("t="))
        with pytest.raises(WebhookVerificationError, match="does not match"):
            verify_webhook(secret, got.body.replace(b"credential.stored", b"credential.revoked"), signature)
        with pytest.raises(WebhookVerificationError, match="does not match"):
            verify_webhook("whsec_not_the_secret", got.body, signature)
        with pytest.raises(WebhookVerificationError, match="from now"):
            verify_webhook(secret, got.body, signature, now=t + 301)
        assert verify_webhook(secret, got.body, signature, now=t + 299)["id"] == event["id"]
        with pytest.raises(WebhookVerificationError, match="does not match"):
            verify_webhook(secret, got.body, f"t={t + 1}," + signature.split(",")[1])
        for bad in (None, "", "v1=abc", f"t={t}", "t=x,v1=00"):
            with pytest.raises(WebhookVerificationError):
                verify_webhook(secret, got.body, bad)

        tessera.delete_webhook(tenant, created.webhook["id"])


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    # The vector of Tessera's own test (tessera-core's webhook.rs): printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
    header = "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
    body = b'{"id":"e","event":"key.rotated","tenantId":"t","createdAt":"c","data":{}}'
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook("whsec_test", body, header, now=1_700_000_000)
    assert verify_webhook(Secret("whsec_test"), b"{}", header, now=1_700_000_000) == {}  # type: ignore[comparison-overlap]
    assert time.time() > 1_700_000_000
    with pytest.raises(WebhookVerificationError, match="from now"):
        verify_webhook("whsec_test", b"{}", header)
