"""No drift between compose.yaml / the Dockerfiles / .env.example and the code: every variable they set
is a real setting, commands, ports and health paths are the services' own, production secrets can be
provided, and the settings SPEC §9 lists are documented."""

from __future__ import annotations

import importlib.util
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    EXTRA_ENV,
    PYTHON_ENV,
    ROOT,
    SERVICES,
    env_example_names,
    field_default,
    interpolated_names,
    main_settings,
    parse_dockerfile,
    raw_compose,
    resolved_compose,
    secret_env_names,
    service_dockerfile,
    service_environment,
    setting_env_names,
    settings_classes,
)

# SPEC §9 (../shared/SPEC.md), checked against the SPEC itself when it is beside the repository
SPEC_SETTINGS = {
    "PUBLIC_URL", "NATS_URL", "DATABASE_URL", "CHAIN_RPC_URL", "CHAIN_ID", "LEDGER_CONTRACT_ADDRESS",
    "LEDGER_PRIVATE_KEY", "ANCHOR_INTERVAL_S", "ANCHOR_MAX_LEAVES", "IPFS_API_URL", "SMTP_HOST", "SMTP_PORT",
    "SMTP_USER", "SMTP_PASSWORD", "SMTP_STARTTLS", "MAIL_FROM", "AUTH_REQUIRE_APPROVAL", "JWT_TTL_S",
    "MAX_FILE_BYTES", "LOG_LEVEL",
}  # fmt: skip
SPEC_FILE = ROOT.parent / "shared" / "SPEC.md"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return resolved_compose()


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_only_real_settings(config: dict[str, Any], service: str) -> None:
    known = setting_env_names(service) | EXTRA_ENV
    unknown = set(service_environment(config, service)) - known
    assert unknown == set(), f"compose sets variables {service} never reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_sets_only_real_settings(service: str) -> None:
    env = parse_dockerfile(service_dockerfile(service)).env()
    unknown = set(env) - setting_env_names(service) - EXTRA_ENV - PYTHON_ENV
    assert unknown == set(), f"{service}.Dockerfile sets variables nothing reads: {sorted(unknown)}"


def test_the_settings_scan_sees_every_class() -> None:
    """The gateway's settings classes (its own, with the WebSocket hub's WS_*, and the files proxy's)."""
    gateway = {item.cls.__name__: item.prefix for item in settings_classes("gateway")}
    assert gateway.items() >= {"GatewaySettings": "", "FilesRouteSettings": ""}.items()
    assert {"WS_MAX_FRAME_BYTES", "FILES_INTERNAL_SECRET", "TRUSTED_PROXIES"} <= setting_env_names("gateway")


@pytest.mark.parametrize("service", SERVICES)
def test_command_port_and_health_path_are_the_services(config: dict[str, Any], service: str) -> None:
    spec = config["services"][service]
    module = f"chainchat_{service}"
    assert spec["command"] == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None
    dockerfile = parse_dockerfile(service_dockerfile(service))
    cmd = next(i for i in dockerfile.final.instructions if i.keyword == "CMD")
    assert cmd.exec_form() == spec["command"]

    port = field_default(main_settings(service), "http_port")
    env = service_environment(config, service)
    assert env["HTTP_PORT"] == str(port)
    assert env["HTTP_HOST"] == "0.0.0.0"
    assert [str(p) for p in spec["expose"]] == [str(port)]
    # the image's HEALTHCHECK runs unless compose replaces it; it asks this port's /healthz
    assert "healthcheck" not in spec
    check = next(i for i in dockerfile.final.instructions if i.keyword == "HEALTHCHECK").exec_form()
    assert check is not None
    assert "/healthz" in check[-1]
    assert "os.environ['HTTP_PORT']" in check[-1]


def test_gateway_reaches_files_on_its_port(config: dict[str, Any]) -> None:
    files_port = field_default(main_settings("files"), "http_port")
    assert service_environment(config, "gateway")["FILES_HTTP_URL"] == f"http://files:{files_port}"


@pytest.mark.parametrize("service", SERVICES)
def test_production_secrets_can_be_given_through_env(service: str) -> None:
    """Each secret production requires is passed from .env under its own name and documented."""
    raw_env = raw_compose()["services"][service]["environment"]
    documented = env_example_names()
    for name in secret_env_names(service):
        assert name in raw_env, f"compose does not pass {name} to {service}"
        assert re.fullmatch(rf"\$\{{{name}(:?-[^}}]*)?\}}", str(raw_env[name])), (
            f"{service}: {name} must come from .env (${{{name}:-...}}), not be written in compose.yaml"
        )
        assert name in documented, f"{name} is not in .env.example"


def test_secrets_cover_what_the_services_declare() -> None:
    assert secret_env_names("files") >= {"FILES_INTERNAL_SECRET"}
    assert secret_env_names("ledger") >= {"LEDGER_PRIVATE_KEY"}
    assert secret_env_names("gateway") >= {"FILES_INTERNAL_SECRET"}


def _settings_from(env: dict[str, str], service: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Build every settings class of ``service`` from exactly ``env``; the errors, if any."""
    errors: list[str] = []
    with monkeypatch.context() as patch:
        for name in setting_env_names(service) | EXTRA_ENV:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        for item in settings_classes(service):
            try:
                item.cls(_env_file=None)  # type: ignore[call-arg]
            except ValidationError as exc:
                errors.append(f"{item.cls.__name__}: {exc}")
    return errors


def _production_env(tmp_path: Path, **extra: str) -> Path:
    lines = ["ENVIRONMENT=production", "PUBLIC_URL=https://chat.example.org"]
    lines += [f"{k}={v}" for k, v in extra.items()]
    path = tmp_path / "production.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compose_environment_is_accepted_by_the_settings(
    config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Development defaults, and production with every secret given in .env, both parse."""
    for service in SERVICES:
        assert _settings_from(service_environment(config, service), service, monkeypatch) == []
    given = {
        "FILES_INTERNAL_SECRET": secrets.token_urlsafe(32),
        "AUTH_DATA_KEY": secrets.token_urlsafe(32),
        "LEDGER_PRIVATE_KEY": "0x" + secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        **{f"NATS_{name.upper()}_PASSWORD": secrets.token_urlsafe(32) for name in SERVICES},
    }
    production = resolved_compose(_production_env(tmp_path, **given))
    for service in SERVICES:
        env = service_environment(production, service)
        assert env["ENVIRONMENT"] == "production"
        assert _settings_from(env, service, monkeypatch) == [], service
    assert given["POSTGRES_PASSWORD"] in service_environment(production, "chat")["DATABASE_URL"]


def test_production_without_bus_passwords_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose's chainchat-dev-nats-* bus passwords are placeholders: production refuses them."""
    production = resolved_compose(_production_env(tmp_path))
    for service in SERVICES:
        errors = "\n".join(_settings_from(service_environment(production, service), service, monkeypatch))
        assert "NATS_PASSWORD" in errors or "must be set" in errors, service


def test_production_without_secrets_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compose's development placeholders are not accepted in production: each service that holds a
    secret stops with the variable's name."""
    bus = {f"NATS_{name.upper()}_PASSWORD": secrets.token_urlsafe(32) for name in SERVICES}  # not tested here
    production = resolved_compose(_production_env(tmp_path, **bus))
    for service in ("auth", "files", "ledger"):
        errors = "\n".join(_settings_from(service_environment(production, service), service, monkeypatch))
        wanted = secret_env_names(service)
        assert wanted, service
        assert any(name in errors for name in wanted), f"{service} accepted production without {wanted}"


def test_every_interpolated_variable_is_documented() -> None:
    used = interpolated_names(COMPOSE_FILE.read_text())
    missing = used - env_example_names()
    assert missing == set(), f"compose.yaml reads {sorted(missing)} from .env; document them in .env.example"


def test_env_example_documents_spec_settings() -> None:
    if SPEC_FILE.is_file():
        text = SPEC_FILE.read_text()
        section = text.split("## 9. Configuration", 1)[1].split("\n## ", 1)[0]
        named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
        assert named == SPEC_SETTINGS, "SPEC §9 changed: update SPEC_SETTINGS"
    missing = SPEC_SETTINGS - env_example_names()
    assert missing == set(), f".env.example does not document {sorted(missing)}"


def test_env_example_names_are_read_by_something() -> None:
    """A name in .env.example is a setting of a service, a variable of the local launcher, or one
    compose.yaml reads."""
    settings = set().union(*(setting_env_names(s) for s in SERVICES))
    launcher_source = "\n".join(p.read_text() for p in (ROOT / "deploy" / "devstack").glob("*.py"))
    launcher = set(re.findall(r"[\"']([A-Z][A-Z0-9_]{3,})[\"']", launcher_source))
    compose = interpolated_names(COMPOSE_FILE.read_text())
    unread = {
        name
        for name in env_example_names()
        if name not in settings | launcher | compose | EXTRA_ENV
        and not name.startswith("CHAINCHAT_PORT_")
        and not name.endswith("_DATABASE_URL")
    }
    assert unread == set(), f".env.example documents variables nothing reads: {sorted(unread)}"
    assert ENV_EXAMPLE.read_text().count("\nPOSTGRES_PASSWORD=") == 1


def test_operations_guide_covers_the_secrets_and_its_nats_cluster_config_is_valid(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    for service in SERVICES:
        for name in secret_env_names(service):
            assert f"`{name}`" in guide, f"docs/operations.md does not explain {name}"
    blocks = [b for b in re.findall(r"```\n(.*?)```", guide, re.S) if "cluster {" in b]
    assert len(blocks) == 1
    assert "sync_interval: always" in blocks[0]
    conf = tmp_path / "nats-1.conf"
    conf.write_text(blocks[0].replace("store_dir: /data", f"store_dir: {tmp_path / 'store'}"))
    checked = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "nats-server"), "-c", str(conf), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "NATS_STREAM_REPLICAS=3" in guide
