"""Service-level faults under steady load on the scaled stack (two or more instances of every service,
PostgreSQL): kill -9 of each service in turn, NATS killed, the chain stopped, the IPFS node stopped
during uploads, SMTP down during registrations. Real processes, real kills; the assertions are what
users see (acknowledged sends, history, proofs, uploads, mails), and each scenario adds a row to
the fault report (tests/chaos/_report.py: bench/results/chaos/report.md under make chaos).

tests/integration/test_*_faults.py cover the single-fault behaviours of each service; these add the
load, the second instance and the exactly-once accounting across the whole system.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from chainchat.proof import verify_proof_onchain
from chainchat_testing.accounts import Accounts
from chainchat_testing.ledger import connect
from devstack.stack import Stack
from tests.chaos import _report
from tests.chaos._harness import (
    Accounting,
    account_messages,
    check_anchoring,
    db_rows,
    wait_anchored,
)
from tests.chaos._load import Lane, MessageLoad
from tests.integration.chat_helpers import ChatUser, chat_user

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(900)]

KILL_ORDER = ("auth", "chat", "files", "ledger", "gateway")


@dataclass
class Crowd:
    stack: Stack
    accounts: Accounts
    users: list[ChatUser]

    def conversation(self, members: list[ChatUser], title: str) -> str:
        creator, others = members[0], members[1:]
        resp = self.accounts.http.post(
            "/conversations",
            json={"member_ids": [u.id for u in others], "title": title},
            headers=creator.headers,
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["conversation_id"])

    def lanes(self, title: str) -> tuple[list[Lane], dict[str, dict[str, str]]]:
        """Four senders in two fresh conversations (both members of each send); returns the lanes and,
        per conversation, the headers of a member who reads its history."""
        lanes: list[Lane] = []
        readers: dict[str, dict[str, str]] = {}
        for pair in (self.users[0:2], self.users[2:4]):
            cid = self.conversation(list(pair), f"{title}-{uuid.uuid4().hex[:6]}")
            readers[cid] = pair[1].headers
            lanes += [Lane(user, cid, list(pair)) for user in pair]
        return lanes, readers


@pytest.fixture(scope="module")
def stack(shared_scaled_stack: Stack) -> Stack:
    return shared_scaled_stack


@pytest.fixture(scope="module")
def crowd(stack: Stack, shared_accounts: Accounts) -> Crowd:
    # half of the users signed up through each gateway
    other = Accounts(stack.gateway_urls[1], stack.mail.web_url)
    other.admin = shared_accounts.admin
    try:
        users = [chat_user(shared_accounts if n % 2 == 0 else other, f"load{n}") for n in range(4)]
    finally:
        other.close()
    return Crowd(stack, shared_accounts, users)


# ---------------------------------------------------------------- the accounting every scenario shares


async def settle(crowd: Crowd, load: MessageLoad, readers: dict[str, dict[str, str]]) -> Accounting:
    """After the load stopped: what the users find in history and in the ledger."""
    assert not load.rejected, load.rejected[:3]
    result, stored = await asyncio.to_thread(account_messages, crowd.accounts.http, readers, load.acked)
    bus = await connect(crowd.stack.nats.client_url(), "chaos-check")
    try:
        proofs, _ = await wait_anchored(crowd.stack, bus, stored, timeout=120)
    finally:
        await bus.close()
    await asyncio.to_thread(check_anchoring, result, crowd.stack, proofs, stored)
    for proof in proofs[:: max(1, len(proofs) // 3)][:3]:  # a few against the chain itself
        if not (await verify_proof_onchain(proof, crowd.stack.chain.rpc_url)).valid:
            result.bad_proofs.append(proof.entry.id)
    result.lost += load.given_up
    return result


def record_messages(
    scenario: str, load: MessageLoad, result: Accounting, recover: float | None, note: str
) -> None:
    extra_leaves = sum(n - 1 for n in result.leaf_counts.values() if n > 1)
    retried = sum(1 for a in load.acks if a.attempts > 1)
    _report.record(
        scenario,
        load.describe(),
        len(load.acks),
        len(result.lost),
        len(result.duplicated) + extra_leaves,
        recover,
        f"{note}; {len(load.failures)} failed attempts, {retried} sends acknowledged after a retry; "
        f"anchored once each: {'yes' if result.clean else 'NO: ' + result.summary()}",
    )


async def ready(stack: Stack) -> None:
    await asyncio.to_thread(stack.wait_ready, 90)


# ---------------------------------------------------------------- 1. kill -9 each service in turn


async def _login_through_each_gateway(crowd: Crowd) -> int:
    """Log two users in, one through each gateway, retrying 5xx as a client would; returns how many."""
    done = 0
    for user, gateway in zip(crowd.users[:2], crowd.stack.gateway_urls, strict=True):
        body = {"email": user.account.email, "password": user.account.password}
        async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=10) as http:
            for _ in range(40):
                resp = await http.post("/auth/login", json=body)
                if resp.status_code == 200:
                    done += 1
                    break
                assert resp.status_code >= 500, resp.text
                await asyncio.sleep(0.25)
    return done


async def _upload_through_each_gateway(crowd: Crowd, cid: str, user: ChatUser) -> int:
    """Upload a file with a client that moves to the other gateway on a 5xx; download and compare."""
    gateways = crowd.stack.gateway_urls
    done = 0
    async with httpx.AsyncClient(timeout=20) as http:
        for start in range(len(gateways)):
            data = os.urandom(64 * 1024)
            for attempt in range(40):
                base = gateways[(start + attempt) % len(gateways)]
                resp = await http.post(
                    f"{base}/api/v1/files", params={"conversation_id": cid}, content=data,
                    headers={**user.headers, "Content-Type": "application/octet-stream"},
                )  # fmt: skip
                if resp.status_code == 201:
                    got = await http.get(
                        f"{base}/api/v1/files/{resp.json()['file_id']}", headers=user.headers
                    )
                    assert got.content == data
                    done += 1
                    break
                assert resp.status_code >= 500, resp.text
                await asyncio.sleep(0.25)
    return done


async def _kill_each_in_turn(crowd: Crowd, rate: float, hold: float, rounds: int, scenario: str) -> None:
    stack = crowd.stack
    lanes, readers = crowd.lanes("kill")
    load = MessageLoad(stack.gateway_urls, lanes, rate=rate)
    load.start()
    worst, side, kills, per_kill = 0.0, [], 0, []
    try:
        await load.wait_acks(8)
        for round_ in range(rounds):
            for name in KILL_ORDER:
                victim = stack.services[name][round_ % len(stack.services[name])]
                pid = victim.process.pid if victim.process else None
                killed_at = time.monotonic()
                await asyncio.to_thread(victim.kill)  # SIGKILL
                kills += 1
                assert not victim.alive()
                before = len(load.acks)
                await asyncio.sleep(hold)
                if name == "auth":
                    side.append(f"logins {await _login_through_each_gateway(crowd)}/2")
                if name == "files":
                    uploads = await _upload_through_each_gateway(
                        crowd, lanes[0].conversation_id, lanes[0].sender
                    )
                    side.append(f"uploads {uploads}/2")
                assert len(load.acks) > before, f"no send acknowledged while one {name} was down"
                await asyncio.to_thread(victim.start)  # the same instance back on its port
                assert victim.process is not None
                assert victim.process.pid != pid
                await ready(stack)
                per_kill.append(f"{name} {load.recovery(killed_at):.1f}s")
                worst = max(worst, load.recovery(killed_at))
        await asyncio.sleep(1)
    finally:
        await load.stop()
    result = await settle(crowd, load, readers)
    record_messages(
        scenario, load, result, worst,
        f"{kills} kills ({', '.join(KILL_ORDER)}; {rounds} round(s)); while down: {', '.join(side)}; "
        f"recover = longest from a kill to the last send retried or held up >2 s ({', '.join(per_kill)})",
    )  # fmt: skip
    assert not result.lost, result.summary()
    assert not result.duplicated, result.summary()
    assert result.clean, result.summary()
    assert all(s.endswith(" 2/2") for s in side), side


async def test_kill_9_each_service_in_turn_under_load(crowd: Crowd) -> None:
    await _kill_each_in_turn(crowd, rate=3.0, hold=2.0, rounds=1, scenario="kill -9 each service in turn")


@pytest.mark.slow
async def test_kill_9_every_instance_of_every_service_under_heavier_load(crowd: Crowd) -> None:
    await _kill_each_in_turn(
        crowd, rate=6.0, hold=5.0, rounds=2, scenario="kill -9 every instance of every service (slow)"
    )


# ---------------------------------------------------------------- 2. NATS killed and restarted


async def test_nats_killed_and_restarted_under_load(crowd: Crowd) -> None:
    stack = crowd.stack
    pids = {
        svc.process.name: svc.process.pid for inst in stack.services.values() for svc in inst if svc.process
    }
    lanes, readers = crowd.lanes("nats")
    load = MessageLoad(stack.gateway_urls, lanes, rate=3.0)
    load.start()
    try:
        await load.wait_acks(8)
        killed_at = time.monotonic()
        await asyncio.to_thread(stack.nats.kill)
        await asyncio.sleep(3)
        await asyncio.to_thread(stack.nats.start)
        back_at = time.monotonic()
        await load.wait_acks(len(load.acks) + 8, timeout=60)  # sends go through again
        await asyncio.sleep(2)
    finally:
        await load.stop()
    await ready(stack)
    result = await settle(crowd, load, readers)
    recover = load.recovery(killed_at)
    record_messages(
        "NATS kill -9 and restart", load, result, recover,
        f"NATS down {back_at - killed_at:.1f}s; no service restarted; "
        "recover = kill to the last send that was retried or held up (>2 s)",
    )  # fmt: skip
    assert recover > back_at - killed_at, "the outage held sends up until NATS was back"
    assert not result.lost, result.summary()
    assert not result.duplicated, result.summary()
    assert result.clean, result.summary()
    after = {
        svc.process.name: svc.process.pid for inst in stack.services.values() for svc in inst if svc.process
    }
    assert after == pids, "services reconnect by themselves: none was restarted"


# ---------------------------------------------------------------- 3. the chain stopped


async def _chain_outage(crowd: Crowd, seconds: float, scenario: str) -> None:
    stack = crowd.stack
    lanes, readers = crowd.lanes("chain")
    load = MessageLoad(stack.gateway_urls, lanes, rate=3.0)
    load.start()
    try:
        await load.wait_acks(8)
        await asyncio.to_thread(stack.chain.stop)
        stopped_at = time.monotonic()
        await asyncio.sleep(seconds)
        during = next(a for a in reversed(load.acks) if a.conversation_id == lanes[0].conversation_id)
        # what a user sees meanwhile: the message is in the log, its proof pending
        proof = crowd.accounts.http.get(
            f"/messages/{during.message_id}/proof", headers=lanes[0].sender.headers
        )
        assert proof.status_code == 200, proof.text
        pending_status = proof.json()["status"]
        await asyncio.to_thread(stack.chain.start)
        restarted_at = time.monotonic()
        await asyncio.sleep(2)
    finally:
        await load.stop()
    acked_during = load.acked_between(stopped_at, restarted_at)
    failed_during = load.failures_between(stopped_at, restarted_at)
    started = time.monotonic()
    result = await settle(crowd, load, readers)  # waits until everything is anchored
    catch_up = time.monotonic() - started + (started - restarted_at)
    record_messages(
        scenario, load, result, catch_up,
        f"chain down {restarted_at - stopped_at:.0f}s; {acked_during} sends acknowledged meanwhile, "
        f"{len(failed_during)} failed; proof during the outage: {pending_status}; "
        "recover = chain back to every message anchored",
    )  # fmt: skip
    assert pending_status == "pending"
    assert acked_during >= 0.5 * load.rate * len(lanes) * seconds, "messages kept flowing"
    assert not failed_during
    assert not result.lost, result.summary()
    assert result.clean, result.summary()


async def test_chain_stopped_10s_messages_flow_and_anchoring_catches_up(crowd: Crowd) -> None:
    await _chain_outage(crowd, 10, "chain stopped 10 s")


@pytest.mark.slow
async def test_chain_stopped_60s_messages_flow_and_anchoring_catches_up(crowd: Crowd) -> None:
    await _chain_outage(crowd, 60, "chain stopped 60 s (slow)")


# ---------------------------------------------------------------- 4. IPFS stopped during uploads


async def _slow_body(total: int, seconds: float) -> AsyncIterator[bytes]:
    piece = 64 * 1024
    for _ in range(total // piece):
        yield os.urandom(piece)
        await asyncio.sleep(seconds * piece / total)


async def test_ipfs_stopped_during_uploads(crowd: Crowd) -> None:
    stack = crowd.stack
    uploader, peer = crowd.users[0], crowd.users[1]
    cid = crowd.conversation([uploader, peer], "ipfs")
    acked: dict[str, str] = {}  # file_id -> sha256
    ok_times: list[float] = []
    failures: list[tuple[float, int, str]] = []
    stop = asyncio.Event()

    async def uploads(gateway: str) -> None:
        async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=30) as http:
            while not stop.is_set():
                data = os.urandom(128 * 1024)
                resp = await http.post(
                    "/files", params={"conversation_id": cid}, content=data,
                    headers={**uploader.headers, "Content-Type": "application/octet-stream"},
                )  # fmt: skip
                if resp.status_code == 201:
                    assert resp.json()["sha256"] == hashlib.sha256(data).hexdigest()
                    acked[resp.json()["file_id"]] = resp.json()["sha256"]
                    ok_times.append(time.monotonic())
                else:
                    failures.append((time.monotonic(), resp.status_code, resp.json()["error"]["code"]))
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.1)

    async def in_flight(gateway: str) -> httpx.Response:
        """A large upload still streaming when the node goes away."""
        async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=60) as http:
            return await http.post(
                "/files", params={"conversation_id": cid}, content=_slow_body(4 * 1024 * 1024, 4.0),
                headers={**uploader.headers, "Content-Type": "application/octet-stream"},
            )  # fmt: skip

    workers = [asyncio.create_task(uploads(g)) for g in stack.gateway_urls]
    try:
        await _until(lambda: len(acked) >= 4, 30)
        slow = [asyncio.create_task(in_flight(g)) for g in stack.gateway_urls]
        await asyncio.sleep(1.5)
        stopped_at = time.monotonic()
        await asyncio.to_thread(stack.ipfs.stop)
        interrupted = await asyncio.gather(*slow)
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.ipfs.start)
        back_at = time.monotonic()
        ok_before = len(acked)
        await _until(lambda: len(acked) >= ok_before + 4, 60)
        recovered = min(t for t in ok_times if t >= back_at) - back_at
    finally:
        stop.set()
        await asyncio.gather(*workers)
    in_outage = [f for f in failures if stopped_at <= f[0]]
    rows = await asyncio.to_thread(
        db_rows, stack, "files", "SELECT id, sha256 FROM file WHERE conversation_id = $1", cid
    )
    stored: dict[str, str] = dict(rows)  # type: ignore[arg-type]
    lost = [fid for fid in acked if fid not in stored]
    extra = [fid for fid in stored if fid not in acked]  # a record for an upload the client saw fail
    unreadable = []
    async with httpx.AsyncClient(base_url=f"{stack.gateway_url}/api/v1", timeout=30) as http:
        for file_id, sha in stored.items():
            got = await http.get(f"/files/{file_id}", headers=peer.headers)
            if got.status_code != 200 or hashlib.sha256(got.content).hexdigest() != sha:
                unreadable.append(file_id)
    codes = sorted({f"{status} {code}" for _, status, code in in_outage})
    slow_codes = [_status(r) for r in interrupted]
    _report.record(
        "IPFS node stopped during uploads",
        f"2 uploaders x 128 KiB back to back + 2 x 4 MiB slow uploads, {len(stack.gateway_urls)} gateways",
        len(acked),
        len(lost) + len(unreadable),
        len(extra),
        recovered,
        f"in-flight uploads answered {', '.join(slow_codes)}; during the outage {len(in_outage)} uploads "
        f"refused with {', '.join(codes) or 'nothing'}; recover = node back to uploads succeeding",
    )
    assert all(code.startswith("503 ipfs_unavailable") for code in slow_codes), slow_codes
    assert codes == ["503 ipfs_unavailable"], codes
    assert not lost
    assert not extra, "no file record without content"
    assert not unreadable


def _status(resp: httpx.Response) -> str:
    if resp.status_code < 400:
        return str(resp.status_code)
    return f"{resp.status_code} {resp.json()['error']['code']}"


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- 5. SMTP down during registrations


async def test_smtp_down_during_registrations(crowd: Crowd) -> None:
    stack = crowd.stack
    await asyncio.to_thread(stack.mail.stop)
    registered: list[tuple[str, str]] = []  # (email, user_id)
    slowest = 0.0
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            for n in range(6):
                gateway = stack.gateway_urls[n % len(stack.gateway_urls)]
                email = crowd.accounts.unique_email("smtp-down")
                body = {"email": email, "password": crowd.accounts.password, "display_name": f"Smtp {n}"}
                started = time.monotonic()
                resp = await http.post(f"{gateway}/api/v1/auth/register", json=body)
                slowest = max(slowest, time.monotonic() - started)
                assert resp.status_code == 201, resp.text
                registered.append((email, resp.json()["user_id"]))
        await asyncio.sleep(2)
    finally:
        await asyncio.to_thread(stack.mail.start)
    back_at = time.monotonic()
    delivered: dict[str, int] = {}
    deadline = back_at + 90
    while time.monotonic() < deadline:
        delivered = {e: len(crowd.accounts.mails_to(e)) for e, _ in registered}
        if all(delivered.values()):
            break
        await asyncio.sleep(0.5)
    recover = time.monotonic() - back_at
    await asyncio.sleep(2)  # a duplicate would arrive now
    delivered = {e: len(crowd.accounts.mails_to(e)) for e, _ in registered}
    verified = []
    for email, _ in registered:
        if delivered[email]:
            token = crowd.accounts.wait_link(email, timeout=5)
            verified.append(crowd.accounts.http.post("/auth/verify", json={"token": token}).status_code)
    lost = sum(1 for n in delivered.values() if n == 0)
    _report.record(
        "SMTP down during registrations",
        f"{len(registered)} registrations over {len(stack.gateway_urls)} gateways and 2 auth instances",
        len(registered),
        lost,
        sum(n - 1 for n in delivered.values() if n > 1),
        recover,
        f"slowest registration reply {slowest:.2f}s with SMTP down; {verified.count(200)} verified from the "
        "delayed mails; recover = maildev back to the last mail delivered",
    )
    assert slowest < 5, "the reply does not wait for SMTP"
    assert lost == 0, delivered
    assert all(n == 1 for n in delivered.values()), delivered
    assert verified == [200] * len(registered)
