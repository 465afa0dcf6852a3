"""Property-based fuzzing of the public API from its own OpenAPI document (schemathesis).

Every operation of the running gateway's ``/api/v1/openapi.json`` gets generated requests, valid
and invalid, sent with a logged-in member's bearer token. Each answer must not be a server error,
must carry a status code the document declares for that operation, and must match the declared
schema for that status (the SPEC error body included). ``CHAINCHAT_FUZZ_EXAMPLES`` bounds the
examples per operation (``make fuzz`` sets 1000).

The fuzzer's requests leave from 127.0.0.2: the auth service counts sign-ups, resets and failed
logins per client IP, and the fuzzer must not use up the budget of the suite's other tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from requests.adapters import HTTPAdapter
from schemathesis import checks

from chainchat_gateway.app import create_app
from chainchat_testing.accounts import Account, Accounts
from devstack.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

EXAMPLES = int(os.environ.get("CHAINCHAT_FUZZ_EXAMPLES", "15"))
FUZZ_SOURCE_IP = "127.0.0.2"
LOGOUT = "/api/v1/auth/logout"
OPENAPI: dict[str, Any] = create_app().openapi()
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.response_schema_conformance]


class _FromAddress(HTTPAdapter):
    """A requests adapter whose connections leave from one local address."""

    def __init__(self, source_ip: str) -> None:
        self.source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="session")
def fuzz_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        adapter = _FromAddress(FUZZ_SOURCE_IP)
        session.mount("http://", adapter)
        yield session


@pytest.fixture(scope="session")
def fuzz_user(accounts: Accounts) -> Account:
    """An approved, verified member with a published key: the caller of every generated request."""
    from tests.integration.chat_helpers import chat_user

    return chat_user(accounts, "fuzz").account


def _bearer(accounts: Accounts, user: Account) -> dict[str, str]:
    # access tokens live 15 minutes and make fuzz runs for longer
    if time.monotonic() - user.logged_in_at > 600:
        accounts.login(user)
    return user.headers


def _load_schema() -> Any:
    """The gateway's OpenAPI document, built from the app at collection time (one test per
    operation); ``test_the_served_document_is_the_fuzzed_one`` proves the running gateway serves it.

    Left out: ``POST /auth/logout`` ends the fuzzing user's own session, after which every other
    operation would only test the 401 path (``test_logout_fuzz`` fuzzes it without a bearer)."""
    return schemathesis.openapi.from_dict(OPENAPI).exclude(method="POST", path=LOGOUT)


def test_the_served_document_is_the_fuzzed_one(running_stack: Stack) -> None:
    served = httpx.get(f"{running_stack.gateway_url}/api/v1/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == OPENAPI


schema = _load_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
    print_blob=True,
)
def test_api_conforms_to_its_openapi(
    case: Any,
    running_stack: Stack,
    accounts: Accounts,
    fuzz_user: Account,
    fuzz_session: requests.Session,
) -> None:
    headers = {**(case.headers or {}), **_bearer(accounts, fuzz_user)}
    case.call_and_validate(
        base_url=running_stack.gateway_url, session=fuzz_session, headers=headers, checks=CHECKS, timeout=30
    )


logout_schema = schemathesis.openapi.from_dict(OPENAPI).include(method="POST", path=LOGOUT)


@logout_schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_logout_without_a_session_conforms(
    case: Any, running_stack: Stack, fuzz_session: requests.Session
) -> None:
    """``POST /auth/logout`` with generated refresh tokens and no bearer: never a server error."""
    case.call_and_validate(
        base_url=running_stack.gateway_url, session=fuzz_session, checks=CHECKS, timeout=30
    )


# Hostile bodies every operation that takes one meets, beside what schemathesis generates: deeper
# than any parser should go, over the size cap (declared and streamed), and not JSON at all.
HOSTILE_BODIES: list[tuple[str, bytes | None, dict[str, str]]] = [
    ("deep-array", b"[" * 60_000, {"Content-Type": "application/json"}),
    ("deep-object", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {"Content-Type": "application/json"}),
    ("over-cap", b'{"x": "' + b"a" * 300_000 + b'"}', {"Content-Type": "application/json"}),
    ("over-cap-chunked", None, {"Content-Type": "application/json"}),
    ("not-json", b"\xff\xfe{\x00", {"Content-Type": "application/json"}),
]
HOSTILE_RANGES = ["bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000, "bytes=x-y", "bytes=" + "1-2," * 2000]


def _operations_with_a_body() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, ops in OPENAPI["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op and path != LOGOUT
    )


def _streamed() -> Iterator[bytes]:
    for _ in range(300):
        yield b"a" * 1024


def _documented(method: str, path: str) -> set[int]:
    return {int(s) for s in OPENAPI["paths"][path][method.lower()]["responses"] if s.isdigit()}


@pytest.mark.parametrize(("method", "path"), _operations_with_a_body())
@pytest.mark.parametrize(("name", "body", "headers"), HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES])
def test_hostile_bodies_get_a_documented_4xx(
    running_stack: Stack, accounts: Accounts, fuzz_user: Account, method: str, path: str,
    name: str, body: bytes | None, headers: dict[str, str],
) -> None:  # fmt: skip
    url = running_stack.gateway_url + path.format_map(_AnyId())
    content = _streamed() if body is None else body
    resp = httpx.request(
        method, url, content=content, headers={**headers, **_bearer(accounts, fuzz_user)}, timeout=30
    )
    assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.text[:200])
    assert resp.status_code in _documented(method, path), (name, resp.status_code)
    assert set(resp.json()) == {"error"}
    if name.startswith("deep"):
        assert resp.status_code == 422
    if name.startswith("over-cap") and not path.endswith("/files"):
        assert resp.status_code == 413


@pytest.fixture(scope="module")
def fuzz_file(running_stack: Stack, accounts: Accounts, fuzz_user: Account) -> str:
    """A file of 1000 bytes in a conversation of the fuzzing user's."""
    http = accounts.http
    peer = accounts.create_active("fuzz-peer")
    conv = http.post("/conversations", json={"member_ids": [peer.user_id]}, headers=fuzz_user.headers)
    assert conv.status_code in (200, 201), conv.text
    up = http.post(
        "/files", params={"conversation_id": conv.json()["conversation_id"]}, content=os.urandom(1000),
        headers={**fuzz_user.headers, "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert up.status_code == 201, up.text
    return str(up.json()["file_id"])


@pytest.mark.parametrize("header", HOSTILE_RANGES, ids=["huge-start", "huge-suffix", "letters", "many"])
def test_hostile_ranges_are_never_a_server_error(
    running_stack: Stack, accounts: Accounts, fuzz_user: Account, fuzz_file: str, header: str
) -> None:
    url = f"{running_stack.gateway_url}/api/v1/files/{fuzz_file}"
    resp = httpx.get(url, headers={"Range": header, **_bearer(accounts, fuzz_user)}, timeout=30)
    assert resp.status_code in (200, 206, 416), resp.text[:200]
    assert resp.status_code in _documented("GET", "/api/v1/files/{file_id}")
    if resp.status_code == 416:
        assert resp.headers["Content-Range"] == "bytes */1000"


class _AnyId(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "fuzz-" + key
