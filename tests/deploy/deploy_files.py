"""Readers for the deployment files (compose.yaml, the Dockerfiles, .env.example, .dockerignore) and
for the services' settings classes, shared by the tests in this folder."""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import pkgutil
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKER_DIR = ROOT / "deploy" / "docker"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICES = ("gateway", "auth", "chat", "files", "ledger")
# what the services read from the environment besides their settings classes
EXTRA_ENV = {"CHAINCHAT_VAR", "CHAINCHAT_ENV_FILE"}
# the interpreter's own variables an image may set
PYTHON_ENV = {"PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


# ---------------------------------------------------------------- docker-compose


def compose_binary() -> str:
    """Debian's docker-compose (1.29); `make compose-tool` installs it. Under CI it must be there."""
    found = shutil.which("docker-compose")
    if found:
        return found
    message = "docker-compose is not installed (`make compose-tool` installs it with apt-get)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def run_compose(
    env_file: Path, compose_file: Path = COMPOSE_FILE, *args: str
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on ``compose_file`` with exactly the variables of ``env_file``."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    command = [compose_binary(), "--env-file", str(env_file), "-f", str(compose_file), "config", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False)


@cache
def _empty_env_file() -> Path:
    path = Path(tempfile.mkdtemp(prefix="chainchat-compose-")) / "empty.env"
    path.write_text("")
    return path


@cache
def resolved_compose(env_file: Path | None = None) -> dict[str, Any]:
    """compose.yaml as docker-compose resolves it (anchors merged, ${...} substituted), with the
    variables of ``env_file`` only; None = no variables, the defaults written in compose.yaml
    (whatever .env a developer has)."""
    done = run_compose(env_file or _empty_env_file())
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    loaded = yaml.safe_load(done.stdout)
    assert isinstance(loaded, dict)
    return loaded


def raw_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def interpolated_names(text: str) -> set[str]:
    """Every ${NAME}, ${NAME:-x}, ${NAME-x}, ${NAME:?x} in a compose file ($$ is a literal $)."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    text = text.replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def service_environment(config: dict[str, Any], service: str) -> dict[str, str]:
    env = config["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# ---------------------------------------------------------------- .env.example


def env_example_names() -> set[str]:
    """Names documented in .env.example: `NAME=value` lines and commented `# NAME=value` examples."""
    names: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        for match in re.finditer(r"(?:^|#\s*|\s)([A-Z][A-Z0-9_]*)=", line):
            names.add(match.group(1))
    return names


# ---------------------------------------------------------------- Dockerfiles


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of CMD/HEALTHCHECK CMD/ENTRYPOINT, or None in shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = re.split(r"(?:^|\s)CMD\s", text, maxsplit=1)[-1].strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list)
        return [str(v) for v in value]


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)
    # the FROM as written, e.g. ${PYTHON_IMAGE} (image is its value with the ARG defaults)
    written: str = ""


@dataclass
class Dockerfile:
    path: Path
    stages: list[Stage]
    # the ARGs before the first FROM and their defaults (the bases a build may replace)
    global_args: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for s in self.stages for i in s.instructions if i.keyword == keyword]

    def env(self, stage: Stage | None = None) -> dict[str, str]:
        """ENV of a stage (the final one by default), `A=1 B=2` form."""
        values: dict[str, str] = {}
        for inst in (stage or self.final).instructions:
            if inst.keyword == "ENV":
                for token in shlex.split(inst.args):
                    name, _, value = token.partition("=")
                    values[name] = value
        return values


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped; grouped into stages."""
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append((start, pending + stripped))
        pending = ""
    assert not pending, f"{path.name}: a continuation line runs off the end"
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for number, text in logical:
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        args = " ".join(args.split())
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m[1] or m[2], m[0]), parts[0])
            stages.append(Stage(image=image, name=name, written=parts[0]))
            continue
        if keyword == "ARG" and not stages:
            arg_name, _, default = args.partition("=")
            global_args[arg_name] = default
            continue
        assert stages, f"{path.name}:{number}: {keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, args, number))
    return Dockerfile(path, stages, global_args)


def service_dockerfile(service: str) -> Path:
    return DOCKER_DIR / f"{service}.Dockerfile"


# ---------------------------------------------------------------- .dockerignore


def dockerignore_excludes(relative: str) -> bool:
    """Whether Docker leaves ``relative`` (a path under the repository) out of the build context:
    the last pattern matching the path or one of its parents wins; `!` re-includes."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = Path(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/")
        regex = _glob_regex(body)
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        else:
            piece = pattern[i]
            out += "[^/]*" if piece == "*" else "[^/]" if piece == "?" else re.escape(piece)
            i += 1
    return re.compile(out)


def matches_any(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


# ---------------------------------------------------------------- the services' settings


@dataclass(frozen=True)
class SettingsClass:
    cls: type[BaseSettings]
    prefix: str

    def env_names(self) -> set[str]:
        return {f"{self.prefix}{name}".upper() for name in self.cls.model_fields}


@cache
def settings_classes(service: str) -> tuple[SettingsClass, ...]:
    """Every pydantic-settings class a service's code defines or inherits (e.g. the gateway's
    GatewaySettings and FilesRouteSettings), found by importing its modules."""
    package = importlib.import_module(f"chainchat_{service}")
    found: dict[type[BaseSettings], None] = {}
    for info in pkgutil.walk_packages(package.__path__, f"chainchat_{service}."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings:
                if value.__module__.startswith(f"chainchat_{service}"):
                    found[value] = None
    return tuple(SettingsClass(cls, str(cls.model_config.get("env_prefix", ""))) for cls in found)


def main_settings(service: str) -> type[BaseSettings]:
    module = importlib.import_module(f"chainchat_{service}.settings")
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, BaseSettings) and v.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"chainchat_{service}.settings should define one settings class"
    return classes[0]


def setting_env_names(service: str) -> set[str]:
    names: set[str] = set()
    for item in settings_classes(service):
        names |= item.env_names()
    return names


def field_default(cls: type[BaseSettings], name: str) -> Any:
    return cls.model_fields[name].default


def secret_env_names(service: str) -> set[str]:
    """The settings production refuses to start without: every class's ``secret_fields``, and the
    same names wherever another class of the service reads them too (the gateway's copy of
    FILES_INTERNAL_SECRET)."""
    every_secret: set[str] = set()
    for svc in SERVICES:
        for item in settings_classes(svc):
            if "secret_fields" in item.cls.model_fields:
                every_secret |= {n.upper() for n in field_default(item.cls, "secret_fields")}
    return every_secret & setting_env_names(service)
