"""The real components of the local stack: NATS, the chain, the IPFS node, the SMTP catcher.

Each launcher takes its ports (fixed defaults for ``make up``, free ports in tests), keeps its data
in ``data_dir``, waits until the component answers and stops it cleanly.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import httpx

from devstack import paths
from devstack.nats_auth import OPERATOR, BusCredentials, ensure_credentials
from devstack.process import LaunchError, ManagedProcess, ensure_ports_free

# Deterministic development accounts (public knowledge; never used outside a local chain).
GANACHE_DEV_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@dataclass
class Component:
    data_dir: Path
    echo: bool = False
    colour: str = "0"
    process: ManagedProcess | None = field(default=None, init=False)
    name: ClassVar[str] = "component"
    start_timeout: ClassVar[float] = 60.0

    def ports(self) -> list[int]:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        ensure_ports_free(self.name, self.ports())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.process = ManagedProcess(
            self.name,
            self.argv(),
            log_path=self.data_dir.parent / "log" / f"{self.name}.log",
            echo=self.echo,
            colour=self.colour,
        )
        self.process.start()
        self.process.wait_ready(self.probe, self.start_timeout)

    def prepare(self) -> None:
        """Write config files before the process starts."""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


@dataclass
class NatsServer(Component):
    """One nats-server with JetStream that refuses connections without credentials: one user per
    service and ``operator`` (``nats_auth.py``), written under ``auth_dir`` (default: the
    ``nats-auth`` directory beside ``data_dir``) before the first start."""

    port: int = 4223
    monitor_port: int = 8222
    auth_dir: Path | None = None
    name: ClassVar[str] = "nats"

    @property
    def url(self) -> str:
        """The server's URL without credentials (a client also needs ``credentials``)."""
        return f"nats://127.0.0.1:{self.port}"

    @cached_property
    def credentials(self) -> BusCredentials:
        return ensure_credentials(self.auth_dir or self.data_dir.parent / "nats-auth")

    def client_url(self, user: str = OPERATOR) -> str:
        """The URL with ``user``'s credentials in it, for in-process clients and tools."""
        return self.credentials.url(self.url, user)

    def ports(self) -> list[int]:
        return [self.port, self.monitor_port]

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats.conf"

    def prepare(self) -> None:
        # sync_interval: always -> an acknowledged JetStream publish is fsynced before the ack;
        # the default (2 min) loses acknowledged writes on a crash.
        store = self.data_dir / "jetstream"
        self.config_path.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            "max_payload: 1MB\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(store))}\n  sync_interval: always\n}}\n"
            + self.credentials.include_line(self.data_dir)
        )

    def argv(self) -> list[str]:
        return [str(paths.nats_server_binary()), "-c", str(self.config_path)]

    def probe(self) -> bool:
        resp = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1)
        return resp.status_code == 200


@dataclass
class Chain(Component):
    """Ganache (default) or Anvil, chain id 1337, deterministic accounts, state on disk."""

    port: int = 8545
    kind: str = "ganache"
    chain_id: int = 1337
    name: ClassVar[str] = "chain"

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dev_private_key(self) -> str:
        return ANVIL_DEV_KEY if self.kind == "anvil" else GANACHE_DEV_KEY

    def ports(self) -> list[int]:
        return [self.port]

    def argv(self) -> list[str]:
        if self.kind == "anvil":
            return [
                str(paths.anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
                "--chain-id", str(self.chain_id), "--state", str(self.data_dir / "anvil-state.json"),
                "--state-interval", "1",
            ]  # fmt: skip
        if self.kind != "ganache":
            raise LaunchError(f"chain: unknown CHAIN_KIND {self.kind!r} (ganache or anvil)")
        return [
            str(paths.node_binary()), str(paths.node_module("ganache", "dist", "node", "cli.js")),
            "--server.host", "127.0.0.1", "--server.port", str(self.port),
            "--chain.chainId", str(self.chain_id), "--chain.networkId", str(self.chain_id),
            "--wallet.deterministic", "--wallet.totalAccounts", "10",
            "--database.dbPath", str(self.data_dir / "ganache-db"), "--logging.quiet",
        ]  # fmt: skip

    def probe(self) -> bool:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        resp = httpx.post(self.rpc_url, json=body, timeout=1)
        return int(resp.json()["result"], 16) == self.chain_id


@dataclass
class IpfsNode(Component):
    api_port: int = 5001
    gateway_port: int = 8081
    name: ClassVar[str] = "ipfs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v0"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def ports(self) -> list[int]:
        return [self.api_port, self.gateway_port]

    def argv(self) -> list[str]:
        pkg = json.loads((paths.IPFS_NODE / "package.json").read_text())
        entry = pkg.get("main", "src/server.js")
        return [
            str(paths.node_binary()), str(paths.IPFS_NODE / entry), "--repo", str(self.data_dir),
            "--api-port", str(self.api_port), "--gateway-port", str(self.gateway_port),
            "--host", "127.0.0.1",
        ]  # fmt: skip

    def probe(self) -> bool:
        return httpx.post(f"{self.api_url}/id", timeout=1).status_code == 200


@dataclass
class MailDev(Component):
    smtp_port: int = 1025
    web_port: int = 1080
    name: ClassVar[str] = "maildev"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def ports(self) -> list[int]:
        return [self.smtp_port, self.web_port]

    def argv(self) -> list[str]:
        return [
            str(paths.node_binary()), str(paths.node_module("maildev", "dist", "bin", "maildev.js")),
            "--smtp", str(self.smtp_port), "--web", str(self.web_port), "--ip", "127.0.0.1",
            "--web-ip", "127.0.0.1", "--mail-directory", str(self.data_dir),
        ]  # fmt: skip

    def probe(self) -> bool:
        ok = httpx.get(f"{self.web_url}/api/email", timeout=1).status_code == 200
        return ok and _tcp_open(self.smtp_port)
