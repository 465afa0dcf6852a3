"""The whole local stack: components first, then the five services, each a supervised process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.components import Chain, Component, IpfsNode, MailDev, NatsServer
from devstack.process import COLOURS, LaunchError, ManagedProcess, ensure_ports_free, free_port

SERVICES = ("auth", "chat", "files", "ledger", "gateway")

DEFAULT_PORTS = {
    "nats": 4223, "nats_monitor": 8222, "chain": 8545, "ipfs_api": 5001, "ipfs_gateway": 8081,
    "smtp": 1025, "mail_web": 1080, "gateway": 8000, "auth": 8101, "chat": 8102, "files": 8103,
    "ledger": 8104,
}  # fmt: skip


def ports_from_env(defaults: dict[str, int]) -> dict[str, int]:
    """Each default port is overridable, e.g. ``CHAINCHAT_PORT_GATEWAY=9000``."""
    return {k: int(os.environ.get(f"CHAINCHAT_PORT_{k.upper()}", v)) for k, v in defaults.items()}


def free_ports() -> dict[str, int]:
    return {k: free_port() for k in DEFAULT_PORTS}


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_dir: Path
    echo: bool = False
    colour: str = "0"
    index: int = 0
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        ensure_ports_free(self.name, [self.port])
        label = self.name if self.index == 0 else f"{self.name}{self.index + 1}"
        self.process = ManagedProcess(
            label,
            [sys.executable, "-m", f"chainchat_{self.name}"],
            log_path=self.log_dir / f"{label}.log",
            env={**self.env, "HTTP_PORT": str(self.port)},
            echo=self.echo,
            colour=self.colour,
        )
        self.process.start()
        self.process.wait_ready(
            lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200, timeout
        )

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


@dataclass
class Stack:
    var_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    echo: bool = False
    chain_kind: str = "ganache"
    environment: str = "development"
    extra_env: dict[str, str] = field(default_factory=dict)
    nats: NatsServer = field(init=False)
    chain: Chain = field(init=False)
    ipfs: IpfsNode = field(init=False)
    mail: MailDev = field(init=False)
    services: dict[str, list[ServiceProcess]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        p, v, e = self.ports, self.var_dir, self.echo
        self.nats = NatsServer(v / "nats", e, COLOURS[0], port=p["nats"], monitor_port=p["nats_monitor"])
        self.chain = Chain(v / "chain", e, COLOURS[1], port=p["chain"], kind=self.chain_kind)
        self.ipfs = IpfsNode(
            v / "ipfs", e, COLOURS[2], api_port=p["ipfs_api"], gateway_port=p["ipfs_gateway"]
        )
        self.mail = MailDev(v / "mail", e, COLOURS[3], smtp_port=p["smtp"], web_port=p["mail_web"])

    @property
    def components(self) -> list[Component]:
        return [self.nats, self.chain, self.ipfs, self.mail]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_env(self, name: str) -> dict[str, str]:
        """Environment of one service process; explicit values in the caller's env win."""
        env = {
            "ENVIRONMENT": self.environment,
            "CHAINCHAT_VAR": str(self.var_dir),
            "NATS_URL": self.nats.url,
            "PUBLIC_URL": os.environ.get("PUBLIC_URL", self.gateway_url),
            "DATABASE_URL": os.environ.get(
                f"{name.upper()}_DATABASE_URL", f"sqlite:///{self.var_dir / f'{name}.db'}"
            ),
            "CHAIN_RPC_URL": self.chain.rpc_url,
            "CHAIN_ID": str(self.chain.chain_id),
            "RPC_URL_PUBLIC": os.environ.get("RPC_URL_PUBLIC", self.chain.rpc_url),
            "LEDGER_PRIVATE_KEY": os.environ.get("LEDGER_PRIVATE_KEY", self.chain.dev_private_key),
            "IPFS_API_URL": self.ipfs.api_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.mail.smtp_port),
            "FILES_HTTP_URL": f"http://127.0.0.1:{self.ports['files']}",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.extra_env)
        return env

    def start_components(self) -> None:
        for component in self.components:
            if not component.alive():
                component.start()

    def add_service(
        self, name: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """Start one more instance of a service (tests run two side by side)."""
        instances = self.services.setdefault(name, [])
        index = len(instances)  # appended below before start: no two threads share a name
        svc = ServiceProcess(
            name=name,
            port=port or (self.ports[name] if index == 0 else free_port()),
            env={**self.service_env(name), **(env or {})},
            log_dir=self.var_dir / "log",
            echo=self.echo,
            colour=COLOURS[4 + SERVICES.index(name)],
            index=index,
        )
        instances.append(svc)
        svc.start()
        return svc

    def start_services(self) -> None:
        # services wait for their dependencies themselves, so they can start side by side
        from concurrent.futures import ThreadPoolExecutor

        for name in SERVICES:
            self.services.setdefault(name, [])
        with ThreadPoolExecutor(len(SERVICES)) as pool:
            for future in [pool.submit(self.add_service, name) for name in SERVICES]:
                future.result()

    def start(self) -> None:
        try:
            self.start_components()
            self.start_services()
        except BaseException:
            self.stop()
            raise

    def processes(self) -> list[tuple[str, ManagedProcess | None]]:
        procs: list[tuple[str, ManagedProcess | None]] = [(c.name, c.process) for c in self.components]
        for instances in self.services.values():
            procs += [(s.process.name if s.process else s.name, s.process) for s in instances]
        return procs

    def stop(self) -> None:
        for instances in reversed(list(self.services.values())):
            for svc in instances:
                svc.stop()
        for component in reversed(self.components):
            component.stop()

    def wait_ready(self, timeout: float = 60.0) -> dict[str, object]:
        """Poll the gateway's aggregated readiness until every service is ready."""
        import time

        deadline = time.monotonic() + timeout
        last: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                resp = httpx.get(f"{self.gateway_url}/api/v1/readyz", timeout=5)
                last = resp.json()
                if resp.status_code == 200:
                    return last
            except httpx.HTTPError as exc:
                last = {"error": str(exc)}
            time.sleep(0.25)
        raise LaunchError(f"the stack did not become ready within {timeout:.0f}s: {last}")
