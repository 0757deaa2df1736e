"""Typed errors with the API's codes (from the real server), and retries,
backoff and timeouts (against stand-ins that answer 429, 503 or slowly)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import pytest
from conftest import Admin, Answer, StandIn, required_env

from tessera_client import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    Tessera,
    TransportError,
    UnavailableError,
)

OK = Answer(200, b'{"tenantId": "acme", "integration": "crm", "config": {"k": "v"}}')
LIMITED = Answer(429, b'{"error": {"code": "rate_limited", "message": "slow down"}}', {"Retry-After": "1"})
DOWN = Answer(503, b'{"error": {"code": "store_unavailable", "message": "the store is down"}}')


def test_error_answers_carry_the_apis_code_message_and_field(admin: Admin, tenant: str) -> None:
    with Tessera(admin.url, "tsr_not_a_key_at_all") as stranger, pytest.raises(AuthenticationError) as unknown:
        stranger.list_secrets(tenant)
    assert (unknown.value.status, unknown.value.code) == (401, "unauthenticated")

    with Tessera(admin.url, admin.token) as tessera:
        with pytest.raises(BadRequestError) as bad:
            tessera.read_secret(tenant, "stripe/key", version=-1)
        assert bad.value.status == 400 and bad.value.code == "invalid_query" and bad.value.field == "version"
        assert "-1" not in bad.value.message

        with pytest.raises(NotFoundError) as missing:
            tessera.get_credentials(tenant, "no-such-integration")
        assert missing.value.code in ("integration_not_found", "credentials_not_found", "connection_not_found")
        assert isinstance(missing.value, ApiError) and missing.value.request_id

    with Tessera(admin.url, admin.key("tenant_service", tenant)) as service:
        with pytest.raises(PermissionDeniedError) as denied:
            service.put_tenant_secret(tenant, "stripe/key", "sk_denied")
        assert denied.value.code == "forbidden"
    # An auditor reads the audit log, never a secret value: to it the tenant's secrets are not there.
    with Tessera(admin.url, admin.key("auditor", None)) as auditor, pytest.raises(NotFoundError) as hidden:
        auditor.get_tenant_secret(tenant, "stripe/key")
    assert hidden.value.code == "tenant_not_found"


def test_tesseras_own_rate_limit_is_waited_out(admin: Admin) -> None:
    # A second server of the suite's, limited to 1 request a second per caller (bursts of 1).
    url = required_env("TESSERA_TEST_LIMITED_URL")
    with Tessera(url, admin.token) as tessera:
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(NotFoundError) as answered:
                tessera.get_tenant_secret("no-tenant", "KEY")
            assert answered.value.code == "tenant_not_found", "the 429s were waited out"
        assert time.monotonic() - started >= 1.5, "three calls at one a second"
    with Tessera(url, admin.token, max_retries=0) as impatient, pytest.raises(RateLimitedError) as limited:
        impatient.get_tenant_secret("no-tenant", "KEY")
    assert (limited.value.status, limited.value.code, limited.value.retry_after) == (429, "rate_limited", 1.0)


def test_429_is_retried_after_retry_after_with_the_same_request_id(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in([LIMITED], OK)
    with Tessera(server.url, "tsr_stand_in") as tessera:
        started = time.monotonic()
        view = tessera.get_resolved("acme", "crm")
    assert view["k"] == "v"
    assert len(server.seen) == 2
    assert server.seen[1].at - server.seen[0].at >= 0.95, "waited what Retry-After asked"
    assert time.monotonic() - started < 20, "not the 30 s a backoff could reach"
    ids = {s.headers["x-request-id"] for s in server.seen}
    assert len(ids) == 1, "one request id for every try of one call"
    assert server.seen[0].headers["authorization"] == "Bearer tsr_stand_in"


def test_503_is_retried_with_backoff_and_an_http_date_retry_after_is_honoured(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in([DOWN, DOWN], OK)
    with Tessera(server.url, "tsr_stand_in") as tessera:
        assert tessera.get_resolved("acme", "crm")["k"] == "v"
    assert len(server.seen) == 3
    first, second = server.seen[1].at - server.seen[0].at, server.seen[2].at - server.seen[1].at
    # 0.5 s doubling, jittered over its upper half: at least 0.25 s, then 0.5 s (never the 30 s cap).
    assert first >= 0.2 and second >= 0.45 and first + second < 20, (first, second)

    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    dated = stand_in([Answer(503, DOWN.body, {"Retry-After": when})], OK)
    with Tessera(dated.url, "tsr_stand_in") as tessera:
        assert tessera.get_resolved("acme", "crm")["k"] == "v"
    assert dated.seen[1].at - dated.seen[0].at >= 0.9


def test_retries_stop_after_max_retries_and_the_typed_error_is_raised(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(default=LIMITED)
    with Tessera(server.url, "tsr_stand_in", max_retries=1) as tessera, pytest.raises(RateLimitedError) as limited:
        tessera.get_tenant_secret("acme", "STRIPE_SECRET_KEY")
    assert len(server.seen) == 2
    assert (limited.value.code, limited.value.retry_after) == ("rate_limited", 1.0)

    long_wait = stand_in(default=Answer(503, DOWN.body, {"Retry-After": "3600"}))
    with Tessera(long_wait.url, "tsr_stand_in") as tessera, pytest.raises(UnavailableError) as down:
        tessera.get_tenant_secret("acme", "STRIPE_SECRET_KEY")
    assert len(long_wait.seen) == 1, "an hour is not waited for: the error is raised at once"
    assert down.value.code == "store_unavailable" and down.value.retry_after == 3600


def test_a_proxied_post_is_not_retried_but_a_proxied_get_is(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(default=Answer(429, b"upstream says slow down", {"Retry-After": "0"}))
    with Tessera(server.url, "tsr_stand_in", max_retries=2) as tessera:
        posted = tessera.proxy("acme", "crm", "items", method="POST", content=b"{}")
        assert posted.status_code == 429 and len(server.seen) == 1
        got = tessera.proxy("acme", "crm", "items")
        assert got.status_code == 429 and len(server.seen) == 4
    assert server.seen[0].headers["x-tenant-id"] == "acme"


def test_a_slow_answer_times_out(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(default=Answer(200, OK.body, delay=2.0))
    with Tessera(server.url, "tsr_stand_in", timeout=0.3) as tessera, pytest.raises(RequestTimeoutError):
        tessera.get_resolved("acme", "crm")
    assert len(server.seen) == 1, "a timeout may have reached the server: not retried"


def test_a_server_that_is_not_there_is_a_transport_error_after_the_retries(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in()
    url = server.url
    server.close()
    with Tessera(url, "tsr_stand_in", max_retries=2) as tessera, pytest.raises(TransportError) as refused:
        tessera.list_secrets("acme")
    assert not isinstance(refused.value, ApiError)
    assert "tsr_stand_in" not in str(refused.value) and "tsr_stand_in" not in repr(tessera)


def test_an_answer_without_tesseras_error_body_still_raises_typed(stand_in: Callable[..., StandIn]) -> None:
    server = stand_in(default=Answer(404, b"<html>not found</html>", {"Content-Type": "text/html"}))
    with Tessera(server.url, "tsr_stand_in") as tessera, pytest.raises(NotFoundError) as missing:
        tessera.list_secrets("acme")
    assert missing.value.code is None and missing.value.status == 404
