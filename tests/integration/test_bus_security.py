"""The bus is not an open door (SPEC §11, "Bus credentials"): the attacks of issue 17 against the
running stack's NATS fail — connecting without credentials, answering ``auth.jwks.v1`` or
listening to every user's deliveries as another service, publishing auth's admin subjects or the
ledger's entries from a service that has no business there, and calling an admin RPC with the
gateway's own credentials for an actor who is not an admin."""

from __future__ import annotations

import asyncio
import gc
import stat
from typing import Any

import nats
import pytest

from chainchat_protocol.auth import AUTH_ADMIN_ROLE, AUTH_ADMIN_USERS, AdminRoleRequest, AdminUsersRequest
from chainchat_protocol.errors import Forbidden
from chainchat_service.bus import Bus
from devstack.nats_auth import USERS
from devstack.stack import Stack

# nats-py leaves a refused connection's transport to the garbage collector, which may run later
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"),
]


async def _violations(stack: Stack, user: str, action: Any) -> list[str]:
    """Run ``action(nc)`` as ``user``; the server's permission errors it caused."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(stack.nats.client_url(user), error_cb=on_error, allow_reconnect=False)
    try:
        await action(nc)
        await nc.flush()
        await asyncio.sleep(0.5)
    finally:
        await nc.close()
    return [e for e in errors if "permission" in e.lower()]


async def test_a_connection_without_credentials_is_refused(running_stack: Stack) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(running_stack.nats.url, allow_reconnect=False, connect_timeout=3)
    wrong = running_stack.nats.url.replace("nats://", "nats://gateway:not-the-password@")
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(wrong, allow_reconnect=False, connect_timeout=3)
    await asyncio.sleep(0)
    gc.collect()  # here, where the warnings are expected, not in the next test


async def test_only_auth_answers_auth_subjects(running_stack: Stack) -> None:
    async def answer_jwks(nc: Any) -> None:
        await nc.subscribe("auth.jwks.v1", queue="auth")

    for user in ("chat", "gateway", "files", "ledger"):
        assert await _violations(running_stack, user, answer_jwks), f"{user} may answer auth.jwks.v1"


async def test_services_cannot_listen_to_every_users_deliveries(running_stack: Stack) -> None:
    async def listen(nc: Any) -> None:
        await nc.subscribe("deliver.user.>")

    for user in ("chat", "files", "ledger", "auth"):
        assert await _violations(running_stack, user, listen), f"{user} may read deliveries"
    assert not await _violations(running_stack, "gateway", listen)  # the gateway delivers them


async def test_publishing_outside_ones_own_subjects_is_a_violation(running_stack: Stack) -> None:
    async def admin_role(nc: Any) -> None:
        await nc.publish("auth.admin.role.v1", b"{}")

    async def forge_entry(nc: Any) -> None:
        await nc.publish("ledger.entry.message.v1", b"{}")

    async def forge_event(nc: Any) -> None:
        await nc.publish("auth.jwks.changed.v1", b"{}")
        await nc.publish("ledger.anchored.v1", b"{}")

    for user in ("chat", "files", "ledger"):
        assert await _violations(running_stack, user, admin_role), f"{user} may call auth's admin RPC"
    assert await _violations(running_stack, "gateway", forge_entry)
    assert len(await _violations(running_stack, "gateway", forge_event)) == 2


async def test_admin_rpcs_check_the_actor_in_auths_database(running_stack: Stack, accounts: Any) -> None:
    """With the gateway's own credentials (which may call admin RPCs for the admin routes), an
    actor who is not an admin is refused by auth itself, and nothing changes."""
    member, target = accounts.create_active("not-admin"), accounts.create_active("target")
    bus = Bus(running_stack.nats.client_url("gateway"), "attacker-with-gateway-credentials")
    await bus.connect()
    try:
        forged = AdminRoleRequest(role="admin", actor_id=member.user_id, user_id=target.user_id)
        with pytest.raises(Forbidden) as refused:
            await bus.request(AUTH_ADMIN_ROLE, forged)
        assert refused.value.code == "admin_required"
        with pytest.raises(Forbidden):
            await bus.request(AUTH_ADMIN_USERS, AdminUsersRequest(actor_id="no-such-user"))
        admin = accounts.admin_account()
        listed = await bus.request(
            AUTH_ADMIN_USERS, AdminUsersRequest(actor_id=admin.user_id, status="active")
        )
        assert target.user_id in [u.id for u in listed.users]
    finally:
        await bus.close()
    me = accounts.http.get("/auth/me", headers=accounts.login(target).headers).json()
    assert me["role"] == "member"


def test_credentials_are_private_files(running_stack: Stack) -> None:
    creds = running_stack.nats.credentials
    assert stat.S_IMODE(creds.directory.stat().st_mode) == 0o700
    for path in [creds.conf_file, *(creds.password_file(u) for u in USERS)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert len({creds.password(u) for u in USERS}) == len(USERS)
    for svc in running_stack.services["chat"]:
        assert svc.env["NATS_USER"] == "chat"
        assert "NATS_PASSWORD" not in svc.env  # a file, not the process environment
