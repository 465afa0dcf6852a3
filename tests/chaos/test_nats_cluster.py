"""The distributed path on loopback: a 3-node NATS cluster, streams at 3 replicas, a node killed.

Two scenarios:
- JetStream level (fast, in ``make test``): the services' own bus publishes ledger entries the way
  the outbox does (``Nats-Msg-Id``, retry until acknowledged) while the stream's leader node is
  killed with SIGKILL; nothing acknowledged is lost or stored twice, the restarted node catches up.
- the whole stack (slow, ``make chaos``): two instances of each service spread over the three nodes,
  senders posting through both gateways; the node that leads the LEDGER stream and holds service
  connections is killed; no acknowledged message is lost or duplicated, every one is appended to
  the ledger exactly once and anchored, the services fail over, the node rejoins and catches up.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.errors import NoRespondersError
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError

from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.outbox import ensure_ledger_stream
from devstack.nats_cluster import ClusterNode, NatsCluster
from devstack.stack import SERVICES, Stack, free_ports
from tests.chaos._harness import history as read_history
from tests.chaos._report import record

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

LEDGER = Subject.LEDGER_STREAM


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster(tmp_path / "nats")
    nats.start()
    yield nats
    nats.stop()


def stream_leader(cluster: NatsCluster, stream: str) -> ClusterNode:
    for node in cluster.nodes:
        if node.alive():
            state = node.stream_state(stream)
            if state and state["cluster"].get("leader"):
                return cluster.node_named(state["cluster"]["leader"])
    raise AssertionError(f"no node reports a leader for {stream}")


async def move_leader(bus: Bus, cluster: NatsCluster, stream: str, to: ClusterNode) -> None:
    """Ask the current leader of ``stream`` to step down in favour of ``to`` (bounded retries)."""
    for _ in range(10):
        if stream_leader(cluster, stream) is to:
            return
        body = json.dumps({"placement": {"preferred": to.server_name}}).encode()
        await bus.nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", body, timeout=5)
        await wait_for(lambda: _has_leader(cluster, stream), 10)
    assert stream_leader(cluster, stream) is to, f"{stream} leader did not move to {to.server_name}"


def _has_leader(cluster: NatsCluster, stream: str) -> bool:
    try:
        stream_leader(cluster, stream)
        return True
    except (AssertionError, httpx.HTTPError):
        return False


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> float:
    """Poll ``predicate`` (exceptions count as false) until true; return the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if await asyncio.to_thread(predicate):
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError):
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s")
        await asyncio.sleep(0.2)


def replicas_agree(cluster: NatsCluster, stream: str) -> bool:
    """Every node holds the stream with the same last sequence and message count."""
    states = [node.stream_state(stream) for node in cluster.nodes]
    if any(s is None for s in states):
        return False
    seen = {(s["state"]["last_seq"], s["state"]["messages"]) for s in states if s is not None}
    return len(seen) == 1


async def stream_msg_ids(bus: Bus, stream: str, subject: str) -> list[str]:
    """The ``Nats-Msg-Id`` of every message in the stream, read back by a fresh ordered consumer."""
    info = await bus.js.stream_info(stream)
    total = info.state.messages
    ids: list[str] = []
    sub = await bus.js.subscribe(subject, ordered_consumer=True, stream=stream)
    try:
        while len(ids) < total:
            msg = await sub.next_msg(timeout=5)
            ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
    finally:
        await sub.unsubscribe()
    return ids


# --- scenario 1: JetStream level, fast ------------------------------------------------------------


async def test_r3_stream_keeps_every_acknowledged_entry_when_its_leader_is_killed(
    cluster: NatsCluster,
) -> None:
    publishers = [
        Bus(cluster.credentials.url(cluster.url_from(i)), f"publisher-{i}", stream_replicas=3)
        for i in range(3)
    ]
    for bus in publishers:
        await bus.connect()
    admin = publishers[0]
    try:
        await ensure_ledger_stream(admin)
        info = await admin.js.stream_info(LEDGER)
        assert info.config.num_replicas == 3
        victim = stream_leader(cluster, LEDGER)
        acked: list[str] = []
        stored_seq: dict[str, int] = {}
        killed_at: list[float] = []
        first_ack_after_kill: list[float] = []

        async def publish(bus: Bus, worker: int) -> None:
            # as the outbox relay does: the same Nats-Msg-Id until the stream acknowledges it
            for n in range(60):
                msg_id = f"message:w{worker}-{n}"
                started = time.monotonic()
                for _ in range(200):
                    try:
                        ack = await bus.js.publish(
                            Subject.LEDGER_ENTRY.format(kind="message"),
                            msg_id.encode(),
                            timeout=2,
                            headers={"Nats-Msg-Id": msg_id},
                        )
                    except Exception:  # noqa: BLE001 - any failure: retry the same id, as the relay does
                        await asyncio.sleep(0.1)
                        continue
                    if not ack.duplicate:
                        stored_seq[msg_id] = ack.seq
                    acked.append(msg_id)
                    if killed_at and started > killed_at[0] and not first_ack_after_kill:
                        first_ack_after_kill.append(time.monotonic() - killed_at[0])
                    break
                else:
                    raise AssertionError(f"{msg_id} never acknowledged")
                await asyncio.sleep(0.01)

        async def kill_then_restart() -> float:
            await wait_for(lambda: len(acked) >= 40, 30, "first acknowledgements")
            victim.kill()
            killed_at.append(time.monotonic())
            await wait_for(lambda: len(acked) >= 120, 60, "acknowledgements after the kill")
            restarted = time.monotonic()
            await asyncio.to_thread(cluster.restart, victim)
            await wait_for(lambda: replicas_agree(cluster, LEDGER), 60, "restarted node catching up")
            return time.monotonic() - restarted

        *_, catch_up_s = await asyncio.gather(
            *(publish(b, i) for i, b in enumerate(publishers)), kill_then_restart()
        )
        await wait_for(lambda: replicas_agree(cluster, LEDGER), 30, "replicas agreeing at the end")

        assert len(acked) == len(set(acked)) == 180
        stored = await stream_msg_ids(admin, LEDGER, Subject.LEDGER_ENTRY_ALL)
        counts = Counter(stored)
        lost = [m for m in acked if counts[m] == 0]
        duplicated = [m for m, c in counts.items() if c > 1]
        assert not lost, f"acknowledged but missing after the leader's death: {lost[:5]}"
        assert not duplicated, f"stored twice: {duplicated[:5]}"
        assert len(stored) == len(acked)
        assert stream_leader(cluster, LEDGER) is not None
        state = victim.stream_state(LEDGER)
        assert state is not None
        assert state["state"]["last_seq"] == max(stored_seq.values())
        assert first_ack_after_kill, "no publish started after the kill was acknowledged"
        record(
            "nats cluster: kill -9 the LEDGER stream leader (JetStream level)",
            "3 publishers x 60 ledger entries, R3 stream",
            len(acked),
            len(lost),
            len(duplicated),
            first_ack_after_kill[0],
            note=f"killed {victim.server_name} (stream leader); it caught up {catch_up_s:.1f}s after restart",
        )
    finally:
        for bus in publishers:
            await bus.close()


async def test_existing_single_replica_stream_and_bucket_are_scaled_to_three(cluster: NatsCluster) -> None:
    name = f"SCALE_{uuid.uuid4().hex[:8].upper()}"
    config = StreamConfig(
        name=name, subjects=[f"scale.{name}.>"], retention=RetentionPolicy.LIMITS, storage=StorageType.FILE
    )
    single, clustered = (
        Bus(cluster.client_url(), "r1", stream_replicas=1),
        Bus(cluster.client_url(), "r3", stream_replicas=3),
    )
    await single.connect()
    await clustered.connect()
    try:
        assert (await single.ensure_stream(config)).config.num_replicas == 1  # an older deployment's
        # a new stream's subjects reach the other nodes' interest maps a moment after it exists
        for attempt in range(50):
            try:
                await single.js.publish(f"scale.{name}.a", b"kept")
                break
            except (NoRespondersError, NoStreamResponseError):
                if attempt == 49:
                    raise
                await asyncio.sleep(0.2)
        info = await clustered.ensure_stream(config)
        assert info.config.num_replicas == 3
        await wait_for(lambda: replicas_agree(cluster, name), 30, "the scaled stream on every node")
        assert (await clustered.js.stream_info(name)).state.messages == 1
        # a config that asks for fewer replicas than exist never scales a stream down
        assert (await single.ensure_stream(config)).config.num_replicas == 3

        from nats.js.api import KeyValueConfig

        bucket = f"scale_{uuid.uuid4().hex[:8]}"
        await single.ensure_key_value(KeyValueConfig(bucket=bucket, storage=StorageType.MEMORY))
        await clustered.ensure_key_value(KeyValueConfig(bucket=bucket, storage=StorageType.MEMORY, ttl=5))
        assert (await clustered.js.stream_info(f"KV_{bucket}")).config.num_replicas == 3
    finally:
        await single.close()
        await clustered.close()


# --- scenario 2: the whole stack over the cluster, slow -------------------------------------------


@pytest.fixture
def cluster_stack(cluster: NatsCluster, tmp_path: Path) -> Iterator[Stack]:
    """Chain, IPFS, maildev and two instances of every service, all on the cluster (the stack's
    own single NATS is never started: every service gets ``NATS_URL`` = the three nodes)."""
    stack = Stack(
        var_dir=tmp_path / "stack",
        ports=free_ports(),
        environment="test",
        extra_env={
            "ANCHOR_INTERVAL_S": "1",
            "LOG_LEVEL": "INFO",
            "CHAINCHAT_ENV_FILE": str(tmp_path / "no-such.env"),
            "NATS_URL": cluster.url,
            "NATS_STREAM_REPLICAS": "3",
        },
    )
    stack.nats.auth_dir = cluster.credentials.directory  # the services log in to the cluster
    try:
        for component in (stack.chain, stack.ipfs, stack.mail):
            component.start()
        for index in range(2):
            # instance i lists node i first (the client still shuffles the list to spread load)
            with ThreadPoolExecutor(len(SERVICES)) as pool:
                futures = [
                    pool.submit(stack.add_service, name, env={"NATS_URL": cluster.url_from(index + k)})
                    for k, name in enumerate(SERVICES)
                ]
                for future in futures:
                    future.result()
        stack.wait_ready(timeout=120)
        yield stack
    finally:
        stack.stop()


def service_connections(cluster: NatsCluster) -> dict[str, list[str]]:
    """Node name → names of the service instances connected to it (clients named by the bus)."""
    live = [n for n in cluster.nodes if n.alive()]
    return {n.server_name: [c for c in n.client_names() if c.split("-", 1)[0] in SERVICES] for n in live}


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_stack_on_a_cluster_loses_nothing_when_a_node_is_killed(
    cluster: NatsCluster, cluster_stack: Stack
) -> None:
    from chainchat_testing.accounts import Accounts
    from tests.integration.chat_helpers import chat_user, send_body

    stack = cluster_stack
    # the stack's own single NATS plays no part: every instance is on the cluster
    assert not stack.nats.alive()
    assert all(
        svc.env["NATS_URL"].count(",") == 2 for instances in stack.services.values() for svc in instances
    )
    accounts = Accounts(stack.gateway_url, stack.mail.web_url)
    accounts.admin_account()
    senders = [chat_user(accounts, f"cl-sender{i}") for i in range(3)]
    reader = chat_user(accounts, "cl-reader")
    members = [*senders, reader]
    gateways = [g.url for g in stack.services["gateway"]]
    resp = accounts.http.post(
        "/conversations",
        json={"member_ids": [m.id for m in members[1:]], "title": "cluster"},
        headers=senders[0].headers,
    )
    assert resp.status_code == 201, resp.text
    cid = resp.json()["conversation_id"]

    admin = Bus(cluster.client_url(), "chaos-observer", stream_replicas=3)
    await admin.connect()
    try:
        info = await admin.js.stream_info(LEDGER)
        assert info.config.num_replicas == 3, "services did not create LEDGER with 3 replicas"
        assert (await admin.js.stream_info("KV_ledger_leader")).config.num_replicas == 3
        spread = service_connections(cluster)
        victim = cluster.node_named(max(spread, key=lambda n: len(spread[n])))
        on_victim = spread[victim.server_name]
        assert on_victim, f"no service connected to any node: {spread}"
        await move_leader(admin, cluster, LEDGER, victim)

        acked: dict[str, tuple[str, int]] = {}  # client_id -> (message_id, seq)
        duplicates: list[str] = []
        retried = 0
        killed_at: list[float] = []
        first_ack_after_kill: list[float] = []

        async def sender(i: int) -> None:
            nonlocal retried
            async with httpx.AsyncClient(timeout=15) as http:
                for n in range(40):
                    body = send_body(senders[i], cid, members, f"s{i}-{n}")
                    started = time.monotonic()
                    for attempt in range(400):
                        url = f"{gateways[(n + attempt + i) % 2]}/api/v1/conversations/{cid}/messages"
                        try:
                            resp = await http.post(url, json=body, headers=senders[i].headers)
                        except httpx.HTTPError:
                            resp = None
                        if resp is not None and resp.status_code == 201:
                            got = (resp.json()["message_id"], resp.json()["seq"])
                            prior = acked.setdefault(body["client_id"], got)
                            if prior != got:
                                duplicates.append(body["client_id"])
                            if killed_at and started > killed_at[0] and not first_ack_after_kill:
                                first_ack_after_kill.append(time.monotonic() - killed_at[0])
                            break
                        # during fail-over a send may be refused, never answered with a 500
                        assert resp is None or resp.status_code in (503, 504), resp.text
                        retried += 1
                        await asyncio.sleep(0.2)
                    else:
                        raise AssertionError(f"message {i}/{n} never acknowledged")
                    await asyncio.sleep(0.05)

        async def fault() -> tuple[float, float]:
            await wait_for(lambda: len(acked) >= 25, 120, "load before the kill")
            victim.kill()
            killed_at.append(time.monotonic())
            # every service instance that was on the victim reconnects to a surviving node
            everyone = sorted(sum(spread.values(), []))
            failover_s = await wait_for(
                lambda: sorted(sum(service_connections(cluster).values(), [])) == everyone,
                60,
                "services failing over to the surviving nodes",
            )
            await asyncio.sleep(3)  # keep the load on two nodes for a while
            restarted = time.monotonic()
            await asyncio.to_thread(cluster.restart, victim)
            await wait_for(lambda: replicas_agree(cluster, LEDGER), 90, "restarted node catching up")
            return failover_s, time.monotonic() - restarted

        *_, (failover_s, catch_up_s) = await asyncio.gather(*(sender(i) for i in range(3)), fault())

        # history: every acknowledged message exactly once, the sequence gap-free
        with httpx.Client(base_url=f"{stack.gateway_url}/api/v1", timeout=15) as http:
            history = read_history(http, cid, reader.headers)
        ids = [m["message_id"] for m in history]
        acked_ids = {mid for mid, _ in acked.values()}
        lost = sorted(acked_ids - set(ids))
        dup_history = [mid for mid, c in Counter(ids).items() if c > 1]
        assert len(acked) == 120
        assert not lost, f"acknowledged but missing from history: {lost[:5]}"
        assert not duplicates
        assert not dup_history
        assert [m["seq"] for m in history] == list(range(1, 121))

        # ledger: each message appended exactly once, and anchored
        anchored = await _wait_all_anchored(stack.gateway_url, sorted(acked_ids), reader.headers)
        assert len({p["leaf_index"] for p in anchored.values()}) == len(acked_ids)
        assert _ledger_message_leaves(stack) == Counter(dict.fromkeys(acked_ids, 1))

        # the restarted node holds the same streams as the others
        for stream in (LEDGER, "CHAT_EVENTS"):
            await wait_for(lambda s=stream: replicas_agree(cluster, s), 60, f"{stream} replicas agreeing")
        reconnects = _reconnect_counts(stack)
        assert sum(reconnects.values()) >= len(on_victim), reconnects
        total = time.monotonic() - killed_at[0]
        record(
            "nats cluster: kill -9 one of 3 nodes under load (whole stack)",
            "3 senders x 40 messages via 2 gateways; 2 instances of each service; R3 streams",
            len(acked),
            len(lost),
            len(duplicates) + len(dup_history),
            failover_s,
            note=(
                f"killed {victim.server_name} (LEDGER leader; service connections per node "
                f"{' '.join(f'{n}:{len(c)}' for n, c in sorted(spread.items()))}); "
                f"first send after the kill acknowledged in {first_ack_after_kill[0]:.1f}s; {retried} "
                f"retried sends; node caught up {catch_up_s:.1f}s after restart; all anchored "
                f"{total:.0f}s after the kill"
            ),
        )
    finally:
        await admin.close()
        accounts.close()


async def _wait_all_anchored(
    gateway: str, message_ids: list[str], headers: dict[str, str], timeout: float = 180
) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=15) as http:
        while len(done) < len(message_ids):
            for mid in message_ids:
                if mid in done:
                    continue
                resp = await http.get(f"/messages/{mid}/proof", headers=headers)
                if resp.status_code == 200 and resp.json()["status"] == "anchored":
                    done[mid] = resp.json()
            if len(done) < len(message_ids):
                assert time.monotonic() < deadline, f"{len(message_ids) - len(done)} messages not anchored"
                await asyncio.sleep(1)
    return done


def _ledger_message_leaves(stack: Stack) -> Counter[str]:
    """Leaves of kind ``message`` per entry id, read from the ledger's database itself."""
    with sqlite3.connect(stack.var_dir / "ledger.db") as db:
        rows = db.execute("SELECT entry_id FROM ledger_leaf WHERE kind = 'message'").fetchall()
    return Counter(row[0] for row in rows)


def _reconnect_counts(stack: Stack) -> dict[str, float]:
    counts: dict[str, float] = {}
    for name, instances in stack.services.items():
        for i, svc in enumerate(instances):
            text = httpx.get(f"{svc.url}/metrics", timeout=5).text
            value = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("chainchat_nats_reconnects_total ")
            )
            counts[f"{name}{i + 1}"] = value
    return counts


async def test_more_replicas_than_servers_is_refused_not_ignored(nats_server: Any) -> None:
    """NATS_STREAM_REPLICAS=3 against a single server: the service must not run on a stream it
    believes is replicated; the server's refusal surfaces instead of "stream exists"."""
    from nats.js.errors import APIError

    bus = Bus(nats_server.client_url(), "r3-on-one-server", stream_replicas=3)
    await bus.connect()
    name = f"MISCONF_{uuid.uuid4().hex[:8].upper()}"
    try:
        with pytest.raises(APIError, match="replicas"):
            await bus.ensure_stream(StreamConfig(name=name, subjects=[f"misconf.{name}"]))
    finally:
        await bus.close()
