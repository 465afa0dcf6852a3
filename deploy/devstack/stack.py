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
#: the services that keep state in a database (the gateway keeps none)
DB_SERVICES = ("auth", "chat", "files", "ledger")
DATABASE_KINDS = ("sqlite", "postgres")

#: how long a service may take to answer /healthz after launch (a crowded machine needs longer)
START_TIMEOUT_S = float(os.environ.get("CHAINCHAT_START_TIMEOUT_S", "60"))

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

    def start(self, timeout: float | None = None) -> None:
        timeout = timeout or START_TIMEOUT_S
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
    #: instances per service (default 1), e.g. ``{"chat": 3, "gateway": 2}``
    scale: dict[str, int] = field(default_factory=dict)
    #: "sqlite" (a file per service under var_dir) or "postgres" (a fresh database per service on the
    #: local server, ``CHAINCHAT_TEST_PG``; dropped by ``stop()`` unless ``keep_databases``)
    database: str = "sqlite"
    keep_databases: bool = False
    nats: NatsServer = field(init=False)
    chain: Chain = field(init=False)
    ipfs: IpfsNode = field(init=False)
    mail: MailDev = field(init=False)
    services: dict[str, list[ServiceProcess]] = field(default_factory=dict, init=False)
    #: service -> PostgreSQL database name, once created
    databases: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.database not in DATABASE_KINDS:
            raise LaunchError(f"unknown database {self.database!r} (one of {', '.join(DATABASE_KINDS)})")
        for name, count in self.scale.items():
            if name not in SERVICES:
                raise LaunchError(f"cannot scale {name!r}: the services are {', '.join(SERVICES)}")
            if count < 1:
                raise LaunchError(f"--scale {name}={count}: at least one instance is needed")
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

    @property
    def gateway_urls(self) -> list[str]:
        """Every gateway instance's URL (the first is ``gateway_url``)."""
        return [svc.url for svc in self.services.get("gateway", [])] or [self.gateway_url]

    def instances_of(self, name: str) -> int:
        return self.scale.get(name, 1)

    def database_url(self, name: str) -> str:
        """What DATABASE_URL a service gets: ``<NAME>_DATABASE_URL`` from the environment wins, then
        the stack's PostgreSQL database for it, else a SQLite file under var_dir."""
        explicit = os.environ.get(f"{name.upper()}_DATABASE_URL")
        if explicit:
            return explicit
        if name in self.databases:
            from devstack.databases import database_url

            return database_url(self.databases[name])
        return f"sqlite:///{self.var_dir / f'{name}.db'}"

    def prepare_databases(self) -> None:
        """Create the fresh PostgreSQL databases (once) when the stack runs on PostgreSQL."""
        if self.database != "postgres" or self.databases:
            return
        from devstack.databases import PG_URL, create_stack_databases

        try:
            self.databases = create_stack_databases(list(DB_SERVICES))
        except (OSError, ImportError) as exc:
            raise LaunchError(f"PostgreSQL at {PG_URL} does not answer: {exc}") from None
        except Exception as exc:  # asyncpg.PostgresError and friends: one clear line
            raise LaunchError(f"could not create the databases on {PG_URL}: {exc}") from None

    def drop_databases(self) -> None:
        if not self.databases or self.keep_databases:
            return
        from devstack.databases import drop_stack_databases

        names, self.databases = list(self.databases.values()), {}
        drop_stack_databases(names)

    def service_env(self, name: str) -> dict[str, str]:
        """Environment of one service process; explicit values in the caller's env win."""
        env = {
            "ENVIRONMENT": self.environment,
            "CHAINCHAT_VAR": str(self.var_dir),
            "NATS_URL": self.nats.url,
            **self.nats.credentials.service_env(name),
            "PUBLIC_URL": os.environ.get("PUBLIC_URL", self.gateway_url),
            "DATABASE_URL": self.database_url(name),
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
        svc = self.new_instance(name, port, env)
        svc.start()
        return svc

    def new_instance(
        self, name: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """Register one more instance of a service (its port chosen, not started yet)."""
        instances = self.services.setdefault(name, [])
        index = len(instances)  # appended below before start: no two threads share a name
        base_env = self.service_env(name)
        if name == "gateway" and len(self.services.get("files", [])) > 1:
            base_env["FILES_HTTP_URL"] = self._files_urls(index)
        svc = ServiceProcess(
            name=name,
            port=port or (self.ports[name] if index == 0 else free_port()),
            env={**base_env, **(env or {})},
            log_dir=self.var_dir / "log",
            echo=self.echo,
            colour=COLOURS[4 + SERVICES.index(name)],
            index=index,
        )
        instances.append(svc)
        return svc

    def _files_urls(self, gateway_index: int) -> str:
        """Every files instance, for a gateway: it spreads transfers over them in turn and moves on
        from one it cannot reach; each gateway starts its turns with a different one."""
        files = [f.url for f in self.services.get("files", [])]
        start = gateway_index % len(files)
        return ",".join(files[start:] + files[:start])

    def start_services(self) -> None:
        """Every service, ``scale[name]`` instances each (one by default).

        Services wait for their dependencies themselves, so they start side by side; the first
        instance of each comes up before its siblings, so that only one runs a fresh database's
        migrations (and the ledger's first contract deployment).
        """
        from concurrent.futures import ThreadPoolExecutor

        self.prepare_databases()
        for name in SERVICES:
            self.services.setdefault(name, [])
        first = {n: self.new_instance(n) for n in SERVICES if not self.services[n]}
        missing = {n: self.instances_of(n) - len(self.services[n]) for n in SERVICES}
        siblings = {n: [self.new_instance(n) for _ in range(missing[n])] for n in SERVICES}
        if len(self.services["files"]) > 1:  # every files instance is planned now: tell each gateway
            for i, gateway in enumerate(self.services["gateway"]):
                gateway.env["FILES_HTTP_URL"] = self._files_urls(i)

        def bring_up(name: str, pool: ThreadPoolExecutor) -> None:
            if name in first:
                first[name].start()
            for future in [pool.submit(svc.start) for svc in siblings[name]]:
                future.result()

        total = len(first) + sum(missing.values())
        with ThreadPoolExecutor(max(total, 1)) as pool, ThreadPoolExecutor(len(SERVICES)) as leads:
            for future in [leads.submit(bring_up, name, pool) for name in SERVICES]:
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
        self.drop_databases()

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
