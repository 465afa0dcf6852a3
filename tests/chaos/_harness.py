"""What the fault scenarios and the scaled-topology test share: a private scaled stack on PostgreSQL,
accounts on it, direct reads of a service's database, metrics, and the exactly-once accounting of
messages (history, ledger leaves, proofs)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from chainchat_protocol.ledger import LEDGER_PROOF_BATCH, EntryRef, ProofBatchRequest
from chainchat_protocol.proof import ProofObject, verify_proof_offline
from chainchat_testing.accounts import Accounts
from chainchat_testing.ledger import FAST_ENV  # fast fail-over: the ledger lease, redelivery, …
from chainchat_testing.pytest_plugin import private_stack
from devstack.databases import PG_URL, database_url
from devstack.stack import ServiceProcess, Stack

T = TypeVar("T")


def require_postgres() -> None:
    """Skip (or fail under CI) when the local PostgreSQL server does not answer."""

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but {PG_URL} does not answer: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")


@contextmanager
def scaled_stack(var_dir: Path, scale: dict[str, int], timeout: float = 150) -> Iterator[Stack]:
    """A private stack with ``scale`` instances per service, every service on its own fresh
    PostgreSQL database, started and ready; stopped (and its databases dropped) afterwards."""
    require_postgres()
    stack = private_stack(var_dir, scale=scale, database="postgres", extra_env=FAST_ENV)
    try:
        stack.start()
        stack.wait_ready(timeout=timeout)
        yield stack
    finally:
        stack.stop()


def accounts_on(stack: Stack) -> Accounts:
    """Account helpers on ``stack`` (its first verified account, created here, is the admin)."""
    helper = Accounts(stack.gateway_url, stack.mail.web_url)
    helper.admin_account()
    return helper


def live(stack: Stack, name: str) -> list[ServiceProcess]:
    return [svc for svc in stack.services[name] if svc.alive()]


# ---------------------------------------------------------------- databases and metrics


def db_rows(stack: Stack, service: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on ``service``'s PostgreSQL database (``$1`` placeholders)."""

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database_url(stack.databases[service]), timeout=5)
        try:
            return [tuple(record) for record in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    result: list[list[tuple[Any, ...]]] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(run()))
        except BaseException as exc:
            errors.append(exc)

    # a thread of its own: callers may be inside the test's event loop
    import threading

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples on one instance whose labels include ``labels``."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, label_text = head.partition("{")
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(interval)


# ---------------------------------------------------------------- exactly-once accounting


def history(http: httpx.Client, cid: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every message of a conversation, in seq order, as a member reads it (200 per page)."""
    messages: list[dict[str, Any]] = []
    while True:
        after = messages[-1]["seq"] if messages else 0
        resp = http.get(
            f"/conversations/{cid}/messages", params={"after_seq": after, "limit": 200}, headers=headers
        )
        assert resp.status_code == 200, resp.text
        batch = resp.json()["messages"]
        if not batch:
            return messages
        messages += batch


@dataclass
class Accounting:
    """What a scenario's users would find: acknowledged messages lost, stored twice, not anchored."""

    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    gaps: dict[str, list[int]] = field(default_factory=dict)
    leaf_counts: dict[str, int] = field(default_factory=dict)
    unanchored: list[str] = field(default_factory=list)
    bad_proofs: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.gaps or self.unanchored or self.bad_proofs) and all(
            n == 1 for n in self.leaf_counts.values()
        )

    def summary(self) -> str:
        wrong_leaves = {k: v for k, v in self.leaf_counts.items() if v != 1}
        return (
            f"acknowledged={self.acknowledged} lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"gaps={self.gaps} leaves!=1={len(wrong_leaves)} unanchored={len(self.unanchored)} "
            f"bad_proofs={len(self.bad_proofs)}"
        )


def account_messages(
    http: httpx.Client,
    conversations: dict[str, dict[str, str]],
    acked: dict[str, str],
) -> tuple[Accounting, list[str]]:
    """Compare the acknowledged sends (client_id -> message_id) with the conversations' histories
    (conversation_id -> a member's headers). Returns the accounting and every stored message id."""
    result = Accounting(acknowledged=len(acked))
    stored: list[str] = []
    signatures: Counter[str] = Counter()
    for cid, headers in conversations.items():
        messages = history(http, cid, headers)
        seqs = [m["seq"] for m in messages]
        if seqs != list(range(1, len(seqs) + 1)):
            result.gaps[cid] = sorted(set(range(1, (max(seqs) if seqs else 0) + 1)) - set(seqs))
        stored += [m["message_id"] for m in messages]
        # a retried send stored twice would show the same sealed envelope under two message ids
        signatures.update(m["envelope"]["signature"] if "envelope" in m else m["signature"] for m in messages)
    by_id = Counter(stored)
    result.duplicated = [mid for mid, n in by_id.items() if n > 1]
    result.duplicated += [sig for sig, n in signatures.items() if n > 1]
    acked_ids = Counter(acked.values())
    result.duplicated += [mid for mid, n in acked_ids.items() if n > 1]  # two client_ids, one message?
    result.lost = sorted(set(acked.values()) - set(stored))
    return result, stored


def leaf_counts(stack: Stack, message_ids: list[str]) -> dict[str, int]:
    """How many ledger leaves each message has (exactly one is right)."""
    rows = db_rows(
        stack,
        "ledger",
        "SELECT entry_id, count(*) FROM ledger_leaf WHERE kind = 'message' AND entry_id = ANY($1::text[]) "
        "GROUP BY entry_id",
        message_ids,
    )
    found = {entry_id: int(n) for entry_id, n in rows}
    return {mid: found.get(mid, 0) for mid in message_ids}


async def proofs_for(bus: Any, message_ids: list[str]) -> tuple[list[ProofObject], list[str]]:
    """The ledger's proofs for messages (200 per request) and the ids it does not know."""
    proofs: list[ProofObject] = []
    missing: list[str] = []
    for start in range(0, len(message_ids), 200):
        refs = [EntryRef(kind="message", id=mid) for mid in message_ids[start : start + 200]]
        reply = await bus.request(LEDGER_PROOF_BATCH, ProofBatchRequest(entries=refs), timeout=20)
        proofs += reply.proofs
        missing += [ref.id for ref in reply.missing]
    return proofs, missing


async def wait_anchored(
    stack: Stack, bus: Any, message_ids: list[str], timeout: float
) -> tuple[list[ProofObject], float]:
    """Wait until every message's proof is anchored; returns the proofs and how long it took."""
    started = time.monotonic()
    while True:
        proofs, missing = await proofs_for(bus, message_ids)
        pending = [p for p in proofs if p.status != "anchored"]
        if not missing and not pending:
            return proofs, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"{len(missing)} messages not in the log and {len(pending)} not anchored after {timeout:.0f}s"
            )
        await asyncio.sleep(0.5)


def check_anchoring(result: Accounting, stack: Stack, proofs: list[ProofObject], stored: list[str]) -> None:
    """Fill the ledger part of the accounting: one leaf per message, every proof anchored and valid."""
    result.leaf_counts = leaf_counts(stack, stored)
    by_id = {p.entry.id: p for p in proofs}
    result.unanchored = [mid for mid in stored if mid not in by_id or by_id[mid].status != "anchored"]
    result.bad_proofs = [mid for mid, p in by_id.items() if not verify_proof_offline(p).ok]
