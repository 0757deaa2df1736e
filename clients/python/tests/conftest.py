"""The suite runs against a real Tessera (``TESSERA_TEST_URL``, with its
admin token ``TESSERA_TEST_ROOT_TOKEN``): tests/api/clients.rs in the
repository starts the binary and runs this suite. The setup the client does
not cover (tenants, the integration registry, configs, keys) is done here
with plain httpx as an admin.

Small HTTP servers of the test's own stand in for what Tessera talks to (an
integration's API, a webhook receiver) and for a Tessera that answers 429,
503 or too slowly.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest


def required_env(name: str) -> str:
    """An environment variable the suite needs: skipped without it, failed in CI."""
    value = os.environ.get(name)
    if not value:
        reason = f"{name} is not set (tests/api/clients.rs sets it when it runs this suite)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return value


@dataclass
class Admin:
    """Root access to the server under test, for setup."""

    url: str
    token: str
    http: httpx.Client

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = self.http.request(method, self.url + path, json=body, headers={"Authorization": f"Bearer {self.token}"})
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def tenant(self) -> str:
        tenant = f"t-{uuid.uuid4().hex[:12]}"
        self.call("POST", "/tenants", {"id": tenant, "name": f"Tenant {tenant}"}, expect=201)
        return tenant

    def integration(self, body: dict[str, Any]) -> str:
        key = f"i-{uuid.uuid4().hex[:12]}"
        self.call("POST", "/integrations", {"key": key, "name": f"Integration {key}", **body}, expect=201)
        return key

    def key(self, role: str, tenant: str | None) -> str:
        r = self.call("POST", "/api-keys", {"name": role, "role": role, "tenantId": tenant}, expect=201)
        key: str = r["key"]
        return key

    def audit(self, action: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.call("GET", f"/audit?action={action}&limit=1000")["events"]
        return events


@pytest.fixture(scope="session")
def admin() -> Iterator[Admin]:
    url = required_env("TESSERA_TEST_URL")
    token = required_env("TESSERA_TEST_ROOT_TOKEN")
    with httpx.Client(timeout=30) as http:
        yield Admin(url, token, http)


@pytest.fixture
def tenant(admin: Admin) -> str:
    return admin.tenant()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


class StandIn:
    """An HTTP server on loopback that records every request and answers
    from a script (then ``default``)."""

    def __init__(self, script: list[Answer] | None = None, default: Answer | None = None) -> None:
        self.script = list(script or [])
        self.default = default or Answer()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stand_in.lock:
                    stand_in.seen.append(
                        Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    answer = stand_in.script.pop(0) if stand_in.script else stand_in.default
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, predicate: Callable[[Seen], bool], timeout: float = 30.0) -> Seen:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for s in self.seen:
                    if predicate(s):
                        return s
            time.sleep(0.05)
        raise AssertionError(f"no matching request within {timeout} s; seen: {[(s.method, s.path) for s in self.seen]}")


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    """Starts stand-in servers for one test, all stopped after it."""
    started: list[StandIn] = []

    def start(script: list[Answer] | None = None, default: Answer | None = None) -> StandIn:
        s = StandIn(script, default)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()
