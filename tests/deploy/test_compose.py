"""compose.yaml is valid for docker-compose 1.29 and runs scaled: no fixed names or host ports on the
services, health-based start order, one entry point (nginx) in front of the gateways."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    DOCKER_DIR,
    ENV_EXAMPLE,
    ROOT,
    SERVICES,
    parse_dockerfile,
    raw_compose,
    resolved_compose,
    run_compose,
    service_dockerfile,
    service_environment,
)

COMPONENTS = ("nats", "chain", "ipfs", "maildev", "postgres")
# the only ports a person opens: the load balancer in front of the gateways, and the mail UI
PUBLISHED = {"edge": 8000, "maildev": 1080}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return resolved_compose()


def test_compose_file_is_valid_and_runs_the_whole_stack(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {*SERVICES, *COMPONENTS, "edge"}
    assert set(config["volumes"]) >= {"nats-data", "pg-data", "chain-data", "ipfs-data"}


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    """docker-compose config really checks the schema: a wrong depends_on condition fails."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: healthy", 1))
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = run_compose(empty, broken)
    assert done.returncode != 0
    assert "condition" in done.stderr


def test_valid_with_the_env_example_and_addresses_point_at_containers(config: dict[str, Any]) -> None:
    """`cp .env.example .env` must give a working stack: no service is sent to 127.0.0.1 (its own
    container) for NATS, the chain, IPFS, SMTP or its database."""
    with_example = resolved_compose(ENV_EXAMPLE)  # fails with docker-compose's message if invalid
    for service in SERVICES:
        env = service_environment(with_example, service)
        loopback = {k: v for k, v in env.items() if re.search(r"127\.0\.0\.1|localhost", v)}
        loopback.pop("PUBLIC_URL", None)  # the browser's address, not a container's
        assert loopback == {}, f"{service} would reach its own container: {loopback}"
    assert service_environment(with_example, "auth")["SMTP_HOST"] == "maildev"
    assert service_environment(with_example, "files")["IPFS_API_URL"] == "http://ipfs:5001/api/v0"
    assert service_environment(with_example, "ledger")["CHAIN_RPC_URL"] == "http://chain:8545"
    assert service_environment(with_example, "chat")["NATS_URL"] == "nats://nats:4222"


@pytest.mark.parametrize("service", SERVICES)
def test_scalable_services_have_no_fixed_name_or_host_port(config: dict[str, Any], service: str) -> None:
    """`docker compose up --scale chat=3 --scale gateway=2` starts N copies: a container_name or a
    host port would make the second copy fail."""
    spec = config["services"][service]
    assert "container_name" not in spec
    assert "ports" not in spec
    assert spec.get("image", "").startswith(f"chainchat/{service}:")
    assert spec["build"]["dockerfile"] == f"deploy/docker/{service}.Dockerfile"
    assert spec.get("deploy", {}).get("replicas", 1) == 1  # scaled with --scale, not pinned here


def test_only_the_edge_and_the_mail_ui_are_published(config: dict[str, Any]) -> None:
    published = {name: spec["ports"] for name, spec in config["services"].items() if spec.get("ports")}
    assert set(published) == set(PUBLISHED)
    for name, ports in published.items():
        assert len(ports) == 1
        port = ports[0]
        if not isinstance(port, str):
            port = f"{port.get('host_ip')}:{port['published']}:{port['target']}"
        parsed = re.fullmatch(r"([\d.]+):(\d+):(\d+)(?:/tcp)?", port)
        assert parsed is not None, port
        host_ip, _host_port, target = parsed.groups()
        assert host_ip == "127.0.0.1", f"{name} must bind to loopback by default"
        assert int(target) == PUBLISHED[name]
    assert all("container_name" not in spec for spec in config["services"].values())


def test_start_order_waits_for_health(config: dict[str, Any]) -> None:
    """Every depends_on waits for a health check the target really has (in compose.yaml or in its
    image's HEALTHCHECK), and the order has no cycle."""
    services = config["services"]
    has_health = {name for name, spec in services.items() if spec.get("healthcheck")}
    for service in SERVICES:
        if parse_dockerfile(service_dockerfile(service)).all("HEALTHCHECK"):
            has_health.add(service)
    edges: dict[str, set[str]] = {}
    for name, spec in services.items():
        depends = spec.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        edges[name] = set(depends)
        for target, rule in depends.items():
            assert rule["condition"] == "service_healthy", f"{name} -> {target}"
            assert target in has_health, f"{name} waits for {target}, which has no health check"
    for service in ("auth", "chat", "files", "ledger"):
        assert {"nats", "postgres"} <= edges[service]
    assert "chain" in edges["ledger"]
    assert "ipfs" in edges["files"]
    assert "maildev" in edges["auth"]
    assert {"nats", "auth", "chat", "files", "ledger"} <= edges["gateway"]
    assert edges["edge"] == {"gateway"}

    state: dict[str, str] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert state.get(node) != "open", f"depends_on cycle: {' -> '.join((*path, node))}"
        if state.get(node) == "done":
            return
        state[node] = "open"
        for nxt in edges.get(node, ()):
            visit(nxt, (*path, node))
        state[node] = "done"

    for node in edges:
        visit(node, ())


def test_nats_runs_jetstream_with_fsync_on_a_volume(config: dict[str, Any]) -> None:
    """The config file compose mounts is valid for the real nats-server (the same binary the local
    stack runs), keeps JetStream on the named volume and fsyncs every write."""
    nats = config["services"]["nats"]
    mounts = {v["target"]: v for v in nats["volumes"]} if isinstance(nats["volumes"][0], dict) else {}
    if not mounts:  # short syntax "src:target[:ro]"
        mounts = {v.split(":")[1]: {"source": v.split(":")[0]} for v in nats["volumes"]}
    conf_target = nats["command"][nats["command"].index("-c") + 1]
    conf_source = Path(str(mounts[conf_target]["source"]))
    assert conf_source.resolve() == (DOCKER_DIR / "nats.conf").resolve()
    text = conf_source.read_text()
    assert re.search(r"^\s*sync_interval:\s*always\s*$", text, re.M)
    store = re.search(r"^\s*store_dir:\s*(\S+)\s*$", text, re.M)
    assert store is not None
    assert mounts[store.group(1)]["source"] == "nats-data"
    checked = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "nats-server"), "-c", str(conf_source), "-t"],
        env={**os.environ, **{k: str(v) for k, v in (nats.get("environment") or {}).items()}},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    monitor = re.search(r"^\s*http:\s*[\d.]*:?(\d+)\s*$", text, re.M)
    assert monitor is not None
    assert f"127.0.0.1:{monitor.group(1)}/healthz" in " ".join(nats["healthcheck"]["test"])
    client = re.search(r"^\s*listen:\s*[\d.]*:(\d+)\s*$", text, re.M)
    assert client is not None
    for service in SERVICES:
        assert service_environment(config, service)["NATS_URL"] == f"nats://nats:{client.group(1)}"


def test_postgres_has_one_database_per_service(config: dict[str, Any]) -> None:
    """The init script creates exactly the databases the services' DATABASE_URLs name."""
    postgres = config["services"]["postgres"]
    init = [v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in str(v)]
    assert len(init) == 1
    source = Path(str(init[0]["source"] if isinstance(init[0], dict) else init[0].split(":")[0]))
    created = set(re.findall(r"CREATE DATABASE\s+(\w+)\s*;", source.read_text(), re.I))
    wanted = {}
    for service in SERVICES:
        url = service_environment(config, service).get("DATABASE_URL")
        if url:
            assert url.startswith("postgresql://chainchat:")
            assert "@postgres:5432/" in url
            wanted[service] = url.rsplit("/", 1)[1]
    assert set(wanted) == {"auth", "chat", "files", "ledger"}  # the gateway keeps no data
    assert len(set(wanted.values())) == len(wanted), "two services share a database"
    assert created == set(wanted.values())
    assert postgres["environment"]["POSTGRES_USER"] == "chainchat"


def test_edge_balances_the_gateways_with_websockets(config: dict[str, Any]) -> None:
    """nginx resolves `gateway` at run time (all replicas), passes WebSocket upgrades, streams
    bodies, and appends exactly one X-Forwarded-For hop, which is what TRUSTED_PROXIES=1 trusts."""
    edge = config["services"]["edge"]
    conf_mount = next(v for v in edge["volumes"] if "nginx" in str(v))
    source = Path(str(conf_mount["source"] if isinstance(conf_mount, dict) else conf_mount.split(":")[0]))
    text = source.read_text()
    assert re.search(r"^\s*resolver\s+127\.0\.0\.11\b.*valid=\d+s", text, re.M)
    variable = re.search(r"set\s+\$(\w+)\s+http://gateway:(\d+);", text)
    assert variable is not None, "proxy_pass must use a variable so replicas are re-resolved"
    assert re.search(rf"proxy_pass\s+\${variable.group(1)};", text)
    assert int(variable.group(2)) == 8000 == int(service_environment(config, "gateway")["HTTP_PORT"])
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $connection_upgrade;" in text
    assert "proxy_http_version 1.1;" in text
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in text
    assert "proxy_request_buffering off;" in text
    listen = re.search(r"^\s*listen\s+(\d+);", text, re.M)
    assert listen is not None
    assert int(listen.group(1)) == PUBLISHED["edge"]
    body = re.search(r"client_max_body_size\s+(\d+)m;", text)
    assert body is not None
    assert int(body.group(1)) * 1024 * 1024 > int(service_environment(config, "gateway")["MAX_FILE_BYTES"])
    assert service_environment(config, "gateway")["TRUSTED_PROXIES"] == "1"
    assert edge["depends_on"] == {"gateway": {"condition": "service_healthy"}}


def test_images_are_pinned(config: dict[str, Any]) -> None:
    for name, spec in config["services"].items():
        image = spec["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: image {image} has no tag"
        assert tag not in ("latest", ""), f"{name}: image {image} is not pinned"
        if name not in SERVICES:
            assert re.match(r"v?\d+(\.\d+)*", tag), f"{name}: {image} should name a version"


def test_the_raw_file_keeps_service_definitions_free_of_host_specific_paths() -> None:
    """Only relative bind mounts (./deploy/docker/...): the file works from any checkout."""
    for name, spec in raw_compose()["services"].items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":")[0]
            assert not source.startswith("/"), f"{name}: absolute host path {source}"
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_the_ipfs_node_is_private(config: dict[str, Any]) -> None:
    """Kubo joins no public network (SPEC §11): the init script the image runs before each start
    turns off routing, bootstrap, announcing, discovery and relays; no host port reaches it."""
    ipfs = config["services"]["ipfs"]
    assert not ipfs.get("ports"), "the IPFS API and gateway stay on the Compose network"
    mounts = {str(v.get("target") if isinstance(v, dict) else v.split(":")[1]): v for v in ipfs["volumes"]}
    assert "/container-init.d/010-private.sh" in mounts
    script = (DOCKER_DIR / "ipfs-private.sh").read_text()
    for line in (
        "ipfs config Routing.Type none",
        "ipfs config --json Bootstrap '[]'",
        "ipfs config --json Addresses.Announce '[]'",
        """ipfs config --json Addresses.NoAnnounce '["/ip4/0.0.0.0/ipcidr/0", "/ip6/::/ipcidr/0"]'""",
        """ipfs config --json Addresses.Swarm '["/ip4/127.0.0.1/tcp/4001"]'""",
        "ipfs config --json Discovery.MDNS.Enabled false",
        "ipfs config --json Gateway.NoFetch true",
    ):
        assert f"\n{line}\n" in script, line
    assert script.startswith("#!/bin/sh\n")
    assert "set -e\n" in script
    assert (DOCKER_DIR / "ipfs-private.sh").stat().st_mode & 0o111
    documented = (ROOT / "docs" / "operations.md").read_text()
    assert "ipfs-private.sh" in documented
    assert "| `Routing.Type` | `none` |" in documented


def test_the_bus_needs_credentials_in_compose(config: dict[str, Any]) -> None:
    """The nats container includes the generated authorization block (current with
    deploy/devstack/nats_auth.py) and every service logs in as its own user."""
    from devstack.nats_auth import SERVICE_USERS, compose_block, password_variable

    assert (DOCKER_DIR / "nats-authorization.conf").read_text() == compose_block(), (
        "run: python -m devstack.nats_auth --compose deploy/docker/nats-authorization.conf"
    )
    assert 'include "nats-authorization.conf"' in (DOCKER_DIR / "nats.conf").read_text()
    nats_env = config["services"]["nats"]["environment"]
    for service in SERVICE_USERS:
        env = service_environment(config, service)
        assert env["NATS_USER"] == service
        assert env["NATS_PASSWORD"] == nats_env[password_variable(service)]
    assert len({nats_env[password_variable(s)] for s in SERVICE_USERS}) == len(SERVICE_USERS)
