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
from devstack.stack import Stack
from tests.integration.conftest import Account, Accounts

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
