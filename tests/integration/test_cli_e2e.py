"""The `chainchat` CLI driven as a user would, against the real stack (subprocess, real output)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Stack
from tests.integration.cli_helpers import PASSWORD, Cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, running_stack: Stack) -> Cli:
    return Cli(tmp_path_factory.mktemp("cli-config"), running_stack.gateway_url)


def _mail_link(accounts: Any, email: str) -> str:
    token = accounts.wait_link(email)
    return f"{cli_server(accounts)}/verify?token={token}"


def cli_server(accounts: Any) -> str:
    return str(accounts.root.base_url).rstrip("/")


def _register_and_verify(cli: Cli, accounts: Any, who: str) -> tuple[str, str]:
    email = accounts.unique_email(who)
    out = cli.json(
        "register", "--email", email, "--name", f"{who.title()} CLI", "--server", cli.server, profile=who
    )
    link = _mail_link(accounts, email)  # the whole link, as pasted from the e-mail
    status = cli.json("verify", link, profile=who)["status"]
    assert status == "pending_approval"
    return out["user_id"], email


def _admin_profile(cli: Cli, accounts: Any) -> str:
    admin = accounts.admin_account()
    cli.run("login", "--email", admin.email, "--server", cli.server, profile="admin", password=admin.password)
    return admin.user_id


def _wait_anchored(cli: Cli, message_id: str, profile: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        report = cli.run("--json", "verify", message_id, "--rpc-url", "http://x", profile=profile, ok=False)
        data = json.loads(report.stdout)
        if data.get("status") == "anchored" or time.monotonic() > deadline:
            return data
        time.sleep(1)


def test_two_users_chat_share_a_file_and_verify_on_chain(
    cli: Cli, accounts: Any, running_stack: Stack, tmp_path: Path
) -> None:
    admin_id = _admin_profile(cli, accounts)
    alice_id, _ = _register_and_verify(cli, accounts, "alice")
    bob_id, _ = _register_and_verify(cli, accounts, "bob")

    # a pending account cannot log in; the admin approves both from the CLI
    refused = cli.run("login", profile="alice", ok=False)
    assert refused.returncode == 1
    assert "pending_approval" in refused.stderr
    pending = {u["id"] for u in cli.json("admin", "pending", profile="admin")}
    assert {alice_id, bob_id} <= pending
    for user_id in (alice_id, bob_id):
        cli.run("admin", "approve", user_id, profile="admin")
    assert admin_id

    for who in ("alice", "bob"):
        cli.run("login", profile=who)
        cli.run("keys", "init", profile=who)
        key_file = cli.config_dir / "profiles" / who / "device.key"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert cli.json("whoami", profile="alice")["id"] == alice_id

    found = cli.json("users", "search", "Bob CLI", profile="alice")
    assert bob_id in {u["user_id"] for u in found}
    conv = cli.json("chat", "new", bob_id, profile="alice")["conversation_id"]
    sent = cli.json("send", conv, "hello bob, this is secret", profile="alice")

    history = cli.run("history", conv, profile="bob").stdout
    assert "hello bob, this is secret" in history
    assert cli.json("chat", "list", profile="bob")[0]["unread_count"] >= 1
    numbers = {
        cli.run("safety-number", peer, profile=me).stdout.strip()
        for me, peer in (("alice", bob_id), ("bob", alice_id))
    }
    assert len(numbers) == 1  # both sides see the same safety number

    # a file, encrypted on Alice's side, decrypted and checked on Bob's
    payload = os.urandom(300_000)
    src = tmp_path / "report.bin"
    src.write_bytes(payload)
    shared = cli.json("file", "send", conv, str(src), profile="alice")
    out = tmp_path / "got.bin"
    got = cli.json("file", "get", conv, shared["message_id"], "--out", str(out), profile="bob")
    assert got["sha256"] == hashlib.sha256(payload).hexdigest()
    assert out.read_bytes() == payload

    # the message's proof, checked against the chain with only the RPC URL
    _wait_anchored(cli, sent["message_id"], "bob")
    proof_file = tmp_path / "proof.json"
    verdict = cli.json(
        "verify",
        sent["message_id"],
        "--rpc-url",
        running_stack.chain.rpc_url,
        "--save",
        str(proof_file),
        profile="bob",
    )
    assert verdict["valid"] is True
    assert verdict["onchain_verify_inclusion"] is True
    human = cli.run(
        "verify", "--file", str(proof_file), "--rpc-url", running_stack.chain.rpc_url, profile="bob"
    ).stdout
    assert "VALID" in human
    assert "tree_size" in human

    # a tampered proof fails, with a non-zero exit
    proof = json.loads(proof_file.read_text())
    proof["entry"]["digest"] = "0" * 64
    proof_file.write_text(json.dumps(proof))
    tampered = cli.run(
        "--json",
        "verify",
        "--file",
        str(proof_file),
        "--rpc-url",
        running_stack.chain.rpc_url,
        profile="bob",
        ok=False,
    )
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["valid"] is False

    # deleting leaves a tombstone for both
    cli.run("delete", sent["message_id"], profile="alice")
    assert "[deleted]" in cli.run("history", conv, profile="bob").stdout

    info = cli.json("ledger", "info", profile="bob")
    assert info["chain_id"] == 1337


def test_watch_prints_messages_as_they_arrive(cli: Cli, accounts: Any) -> None:
    people = {who: accounts.create_active(who, password=PASSWORD) for who in ("carol", "dave")}
    for who, account in people.items():
        cli.run("login", "--email", account.email, "--server", cli.server, profile=who)
        cli.run("keys", "init", profile=who)
    conv = cli.json("chat", "new", people["dave"].user_id, profile="carol")["conversation_id"]
    env = {**os.environ, "CHAINCHAT_CONFIG_DIR": str(cli.config_dir), "CHAINCHAT_PASSWORD": PASSWORD}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "chainchat.cli", "--profile", "dave", "watch", conv, "--count", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # let it connect
        cli.run("send", conv, "first live line", profile="carol")
        cli.run("send", conv, "second live line", profile="carol")
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert "first live line" in out
    assert "second live line" in out


def test_stopped_stack_is_a_clear_cannot_reach(tmp_path: Path) -> None:
    cli = Cli(tmp_path, "http://127.0.0.1:9")
    result = cli.run("login", "--email", "x@example.test", "--server", "http://127.0.0.1:9", ok=False)
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_device_asks_for_the_password_and_can_be_revoked(cli: Cli, accounts: Any) -> None:
    """`keys init` on a second CLI device of one account needs the password again (SPEC §11);
    `keys devices` lists both with their labels and `keys revoke` removes the first."""
    user = accounts.create_active("cli-2dev")
    for who in ("dev-one", "dev-two"):
        cli.run("login", "--email", user.email, "--server", cli.server, profile=who, password=user.password)
    cli.run("keys", "init", "--label", "first", profile="dev-one", password=user.password)
    refused = cli.run(
        "keys", "init", "--label", "second", profile="dev-two", password="not-the-password", ok=False
    )
    assert refused.returncode == 1
    assert "invalid_credentials" in refused.stderr
    cli.run("keys", "init", "--label", "second", profile="dev-two", password=user.password)
    devices = cli.json("keys", "devices", profile="dev-two")
    assert [(d["label"], d["revoked_at"] is None) for d in devices] == [("first", True), ("second", True)]
    first = devices[0]["key_id"]
    cli.run("keys", "revoke", first, profile="dev-two", password=user.password)
    after = {d["key_id"]: d["revoked_at"] for d in cli.json("keys", "devices", profile="dev-one")}
    assert after[first] is not None
