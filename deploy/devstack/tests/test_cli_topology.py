"""`chainchat-dev up --scale … --postgres`: option parsing, the instances it plans, the banner."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import cli
from devstack.process import LaunchError
from devstack.stack import Stack, free_ports


def _parse(argv: list[str]) -> object:
    seen: dict[str, object] = {}

    def capture(args: object) -> int:
        seen["args"] = args
        return 0

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "cmd_up", capture)
        assert cli.main(argv) == 0
    return seen["args"]


def test_scale_is_repeatable_and_postgres_is_a_shorthand() -> None:
    args = _parse(["up", "--scale", "chat=3", "--scale", "gateway=2", "--scale", "chat=4", "--postgres"])
    assert args.scale == {"chat": 4, "gateway": 2}  # type: ignore[attr-defined]
    assert args.database == "postgres"  # type: ignore[attr-defined]
    assert _parse(["up"]).database == "sqlite"  # type: ignore[attr-defined]
    assert cli._topology_args(args) == ["--scale=chat=4", "--scale=gateway=2", "--database", "postgres"]  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["chat", "chat=0", "mail=2", "chat=x"])
def test_bad_scale_is_one_clear_line(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["up", "--scale", bad])
    assert "expected SERVICE=N" in capsys.readouterr().err


def test_a_scaled_stack_plans_ports_and_gives_gateways_every_files_instance(tmp_path: Path) -> None:
    stack = Stack(var_dir=tmp_path, ports=free_ports(), scale={"gateway": 2, "files": 2, "chat": 3})
    planned = {name: [stack.new_instance(name) for _ in range(stack.instances_of(name))] for name in
               ("chat", "files", "gateway")}  # fmt: skip
    assert len({svc.port for instances in planned.values() for svc in instances}) == 7
    files = [f.url for f in planned["files"]]  # every gateway knows both, each starts with its own
    assert [g.env["FILES_HTTP_URL"] for g in planned["gateway"]] == [",".join(files), ",".join(files[::-1])]
    banner = cli._banner(stack, 1.0)
    for url in stack.gateway_urls:
        assert url in banner
    assert "chat=3, files=2, gateway=2" in banner


def test_unknown_service_or_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="cannot scale 'mail'"):
        Stack(var_dir=tmp_path, scale={"mail": 2})
    with pytest.raises(LaunchError, match="unknown database"):
        Stack(var_dir=tmp_path, database="mysql")
