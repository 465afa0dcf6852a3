"""``make compose-up`` / ``compose-down``: the stack of ``make up`` in Docker containers, with compose.yaml.

Starts the Docker engine when it is installed but not running (as root; installs it with apt-get when
missing), builds every image (on bases built from Debian by deploy/docker/local-bases.sh when the
official images cannot be pulled: deploy/docker/compose.local.yaml), starts the project with the edge
on 127.0.0.1:8000 and the mail UI on 127.0.0.1:1080, waits for /api/v1/readyz and prints the banner.
tests/compose drives the same class on free ports under a project name of its own."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack import paths
from devstack.stack import SERVICES

ROOT = paths.ROOT
COMPOSE_FILE = ROOT / "compose.yaml"
LOCAL_OVERRIDE = ROOT / "deploy" / "docker" / "compose.local.yaml"
LOCAL_BASES = ROOT / "deploy" / "docker" / "local-bases.sh"
ENGINE_PACKAGES = ("docker.io", "containerd", "runc", "iptables", "debootstrap", "docker-compose")
# the classic builder: no BuildKit frontend image to pull, and docker-compose 1.29 drives it itself
BUILD_ENV = {"DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}


class ComposeError(RuntimeError):
    """Something the person running the command has to fix; the message says what."""


def _docker_answers() -> bool:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ensure_engine(var_dir: Path = paths.VAR, wait_s: float = 60.0) -> None:
    """A Docker engine that answers, or a ComposeError saying what to install or start."""
    if _docker_answers() and shutil.which("docker-compose"):
        return
    root = os.geteuid() == 0
    missing = [tool for tool in ("dockerd", "docker", "docker-compose") if shutil.which(tool) is None]
    if missing:
        if not root:
            raise ComposeError(
                f"{', '.join(missing)} not installed: run `sudo apt-get install -y --no-install-recommends "
                f"{' '.join(ENGINE_PACKAGES)}` (Debian/Ubuntu) and retry"
            )
        print(f"compose: installing the Docker engine ({' '.join(ENGINE_PACKAGES)})", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq",
                        "--no-install-recommends", *ENGINE_PACKAGES]):  # fmt: skip
            if subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
                raise ComposeError(f"`{' '.join(command)}` failed")
    if _docker_answers():
        return
    if not root:
        raise ComposeError(
            "the Docker engine is not running: start it (`sudo systemctl start docker`, or `sudo dockerd &`) "
            "and make sure you may use it (`sudo usermod -aG docker $USER`, then log in again)"
        )
    var_dir.mkdir(parents=True, exist_ok=True)
    log = var_dir / "dockerd.log"
    print(f"compose: starting dockerd (log {log})", flush=True)
    with open(log, "ab") as out:
        # the engine outlives this command, as a system service would: ``setsid --fork`` starts it
        # in its own session and returns at once, so no child of ours is left running unawaited
        subprocess.run(  # noqa: S603
            ["setsid", "--fork", "dockerd"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _docker_answers():
            return
        time.sleep(1)
    raise ComposeError(f"dockerd did not answer within {wait_s:.0f}s; see {log}")


def official_python_image() -> str:
    """The default of the services' PYTHON_IMAGE build argument (the official image)."""
    text = (ROOT / "deploy" / "docker" / "gateway.Dockerfile").read_text()
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert found, "gateway.Dockerfile lost its PYTHON_IMAGE argument"
    return found.group(1)


def bases_mode() -> str:
    """ "official" when the official images are there or can be pulled, else "local";
    CHAINCHAT_COMPOSE_BASES=official|local decides without trying."""
    wanted = os.environ.get("CHAINCHAT_COMPOSE_BASES", "auto")
    if wanted in ("official", "local"):
        return wanted
    image = official_python_image()
    inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    if inspect.returncode == 0:
        return "official"
    try:
        pulled = subprocess.run(
            ["docker", "pull", "-q", image], capture_output=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        return "local"
    return "official" if pulled.returncode == 0 else "local"


@dataclass
class ComposeProject:
    """One docker-compose project: its name, its files and the two host ports it publishes."""

    name: str = "chainchat"
    gateway_port: int = 8000
    mail_port: int = 1080
    local: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [COMPOSE_FILE, LOCAL_OVERRIDE] if self.local else [COMPOSE_FILE]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def mail_url(self) -> str:
        return f"http://127.0.0.1:{self.mail_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **BUILD_ENV,
            "CHAINCHAT_PORT_GATEWAY": str(self.gateway_port),
            "CHAINCHAT_PORT_MAIL_WEB": str(self.mail_port),
            "PUBLIC_URL": os.environ.get("PUBLIC_URL", self.gateway_url),
            **self.extra_env,
        }

    def run(
        self, *args: str, capture: bool = False, timeout: float | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "--project-name", self.name, "--project-directory", str(ROOT)]
        for file in self.files:
            command += ["--file", str(file)]
        done = subprocess.run(
            [*command, *args], cwd=ROOT, env=self.env(), text=True, capture_output=capture,
            timeout=timeout, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            detail = f":\n{done.stderr[-3000:]}" if capture else ""
            raise ComposeError(f"`docker-compose {' '.join(args)}` failed (exit {done.returncode}){detail}")
        return done

    def build(self) -> None:
        if self.local:
            if subprocess.run([str(LOCAL_BASES)], cwd=ROOT, check=False).returncode != 0:
                raise ComposeError(f"{LOCAL_BASES.relative_to(ROOT)} failed")
        # one at a time: the five services share their dependency stage, built once and then cached
        self.run("build", "--quiet" if os.environ.get("CI") else "--progress=auto")

    def up(self, scale: dict[str, int], timeout: float = 300.0) -> None:
        options = [f"--scale={name}={count}" for name, count in sorted(scale.items())]
        self.run("up", "--detach", "--no-build", "--remove-orphans", *options, timeout=timeout + 60)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 300.0) -> None:
        url = f"{self.gateway_url}/api/v1/readyz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                reply = httpx.get(url, timeout=5)
                if reply.status_code == 200:
                    return
                last = f"{reply.status_code} {reply.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1)
        raise ComposeError(f"{url} not ready within {timeout:.0f}s (last: {last}); see `docker-compose logs`")

    def down(self, volumes: bool = False) -> None:
        self.run("down", "--remove-orphans", *(["--volumes"] if volumes else []), timeout=300)

    def container_ids(self, service: str) -> list[str]:
        done = self.run("ps", "-q", service, capture=True, timeout=60)
        return [line for line in done.stdout.split() if line]

    def banner(self, took: float, scale: dict[str, int]) -> str:
        scaled = [f"{name}={count}" for name, count in sorted(scale.items()) if count > 1]
        bases = "bases built here from Debian" if self.local else "official base images"
        return "\n".join(
            [
                "",
                f"ChainChat is up in Docker ({took:.1f}s; project {self.name}, {bases}).",
                f"  web client + API   {self.gateway_url}/          (API docs {self.gateway_url}/api/v1/docs)",  # noqa: E501
                *([f"  instances          {', '.join(scaled)} (one each of the others)"] if scaled else []),
                f"  readiness          {self.gateway_url}/api/v1/readyz",
                f"  verification mail  {self.mail_url}/        (maildev)",
                "  chain, IPFS, NATS, PostgreSQL   inside the Compose network (no host port)",
                f"  data               Docker volumes {self.name}_{{pg,nats,chain,ipfs}}-data",
                f"  logs               docker-compose -p {self.name} logs -f [service]",
                "`make compose-down` stops everything (the volumes stay; VOLUMES=1 removes them too).",
                "",
            ]
        )


def parse_scale(words: list[str]) -> dict[str, int]:
    """SCALE="chat=3 gateway=2" (make) or --scale chat=3 items: SERVICE=N for the five services."""
    scale: dict[str, int] = {}
    for word in " ".join(words).replace(",", " ").split():
        name, sep, count = word.partition("=")
        if not sep or name not in SERVICES or not count.isdigit() or int(count) < 1:
            raise ComposeError(
                f"SCALE wants SERVICE=N with SERVICE one of {', '.join(SERVICES)}; got {word!r}"
            )
        scale[name] = int(count)
    return scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.compose", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the images and start the stack in Docker")
    up.add_argument("--scale", default="", help='e.g. "chat=3 gateway=2"')
    up.add_argument("--timeout", type=float, default=300.0)
    down = sub.add_parser("down", help="stop and remove the containers")
    down.add_argument("--volumes", action="store_true", help="remove the data volumes too")
    sub.add_parser("build", help="build the bases and the images only")
    args = parser.parse_args(argv)
    try:
        ensure_engine()
        if args.command == "down":
            ComposeProject(local=LOCAL_OVERRIDE.exists()).down(volumes=args.volumes)
            return 0
        scale = parse_scale([args.scale]) if args.command == "up" else {}
        started = time.monotonic()
        project = ComposeProject(local=bases_mode() == "local")
        project.build()
        if args.command == "up":
            project.up(scale, timeout=args.timeout)
            print(project.banner(time.monotonic() - started, scale), flush=True)
        return 0
    except ComposeError as exc:
        print(f"compose: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
