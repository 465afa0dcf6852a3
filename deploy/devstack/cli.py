"""``chainchat-dev``: run the whole local stack in the foreground (``make up``) or in the background."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack import paths
from devstack.process import LaunchError
from devstack.stack import DATABASE_KINDS, DEFAULT_PORTS, SERVICES, Stack, ports_from_env

PID_FILE = "stack.pid"


def _banner(stack: Stack, took: float) -> str:
    mail, chain = stack.mail, stack.chain
    more_gateways = [f"  gateway {i + 2:<10} {url}/" for i, url in enumerate(stack.gateway_urls[1:])]
    scaled = [f"{name}={stack.instances_of(name)}" for name in SERVICES if stack.instances_of(name) > 1]
    topology = []
    if scaled:
        topology.append(f"  instances          {', '.join(scaled)} (one each of the others)")
    if stack.databases:
        names = ", ".join(f"{svc}={db}" for svc, db in stack.databases.items())
        topology.append(f"  PostgreSQL         {names} (fresh; dropped on stop)")
    return "\n".join(
        [
            "",
            f"ChainChat is up ({took:.1f}s).",
            f"  web client + API   {stack.gateway_url}/          (API docs {stack.gateway_url}/api/v1/docs)",
            *more_gateways,
            *topology,
            f"  readiness          {stack.gateway_url}/api/v1/readyz",
            f"  verification mail  {stack.mail.web_url}/        (maildev; SMTP 127.0.0.1:{mail.smtp_port})",
            f"  chain RPC          {chain.rpc_url}        (chain id {chain.chain_id}, {chain.kind})",
            f"  IPFS               {stack.ipfs.api_url}  (gateway {stack.ipfs.gateway_url})",
            f"  NATS               {stack.nats.url}  (bus users: {stack.nats.credentials.directory})",
            f"  data               {stack.var_dir}",
            "Press Ctrl-C to stop everything.",
            "",
        ]
    )


def _supervise(stack: Stack) -> int:
    """Watch every process; if one dies, say which and stop the rest."""
    stopping = False

    def _stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP too: a closed terminal must stop the stack, not orphan it
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    while not stopping:
        for name, proc in stack.processes():
            if proc is not None and not proc.alive():
                code = proc.proc.returncode if proc.proc else "?"
                _say(f"chainchat-dev: {name} exited (code {code}); stopping the stack")
                return 1
        time.sleep(0.5)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    var_dir = paths.VAR
    var_dir.mkdir(parents=True, exist_ok=True)
    pid_path = var_dir / PID_FILE
    if pid_path.exists() and _pid_alive(int(pid_path.read_text().strip() or 0)):
        print(
            f"chainchat-dev: a stack is already running (pid {pid_path.read_text().strip()}); "
            "`make down` stops it",
            file=sys.stderr,
        )
        return 1
    stack = Stack(
        var_dir=var_dir,
        ports=ports_from_env(DEFAULT_PORTS),
        echo=True,
        chain_kind=os.environ.get("CHAIN_KIND", "ganache"),
        scale=args.scale,
        database=args.database,
    )
    started = time.monotonic()
    pid_path.write_text(str(os.getpid()))
    try:
        try:
            stack.start()
            stack.wait_ready(timeout=args.timeout)
        except LaunchError as exc:
            print(f"chainchat-dev: {exc}", file=sys.stderr)
            return 1
        try:
            print(_banner(stack, time.monotonic() - started), flush=True)
        except OSError:
            pass  # nobody reads our output any more; keep supervising
        return _supervise(stack)
    finally:
        # stop first: the terminal may be gone (closed pipe), and printing must not skip this
        _say("chainchat-dev: stopping…")
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            pid_path.unlink()
        _say("chainchat-dev: stopped")


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def cmd_up_detached(args: argparse.Namespace) -> int:
    log = paths.VAR / "log" / "stack.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "devstack.cli", "up", "--timeout", str(args.timeout), *_topology_args(args)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            argv,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + args.timeout + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"chainchat-dev: the stack failed to start; see {log}", file=sys.stderr)
            print("".join(Path(log).read_text().splitlines(keepends=True)[-15:]), file=sys.stderr)
            return 1
        if "ChainChat is up" in log.read_text(errors="replace"):
            print(f"ChainChat is up in the background (pid {proc.pid}); logs in {log}; `make down` stops it.")
            return 0
        time.sleep(0.5)
    print("chainchat-dev: the stack did not come up in time", file=sys.stderr)
    return 1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmd_down(_: argparse.Namespace) -> int:
    pid_path = paths.VAR / PID_FILE
    if not pid_path.exists():
        print("chainchat-dev: no stack is running")
        return 0
    pid = int(pid_path.read_text().strip() or 0)
    if not _pid_alive(pid):
        pid_path.unlink()
        print("chainchat-dev: no stack is running (stale pid file removed)")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(120):
        if not _pid_alive(pid):
            print("chainchat-dev: stopped")
            return 0
        time.sleep(0.25)
    print(f"chainchat-dev: stack (pid {pid}) did not stop within 30s", file=sys.stderr)
    return 1


def load_dotenv(path: Path) -> None:
    """Read KEY=value lines of .env into the environment; variables already set win."""
    if not path.exists():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip().strip('"').strip("'")
        if value:
            os.environ.setdefault(key.strip(), value)


def _scale_option(value: str) -> tuple[str, int]:
    name, sep, count = value.partition("=")
    if not sep or name not in SERVICES or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=N with SERVICE one of {', '.join(SERVICES)} and N >= 1, got {value!r}"
        )
    return name, int(count)


def _topology_args(args: argparse.Namespace) -> list[str]:
    """The scale and database options again, for the background process of --detach."""
    out = [f"--scale={name}={count}" for name, count in args.scale.items()]
    return [*out, "--database", args.database]


def main(argv: list[str] | None = None) -> int:
    load_dotenv(paths.ROOT / ".env")
    parser = argparse.ArgumentParser(prog="chainchat-dev", description="Run ChainChat's local stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything in the foreground; Ctrl-C stops it")
    up.add_argument("--timeout", type=float, default=120.0)
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.add_argument(
        "--scale", type=_scale_option, action="append", default=[], metavar="SERVICE=N",
        help="run N instances of a service side by side (repeatable), e.g. --scale chat=3 --scale gateway=2",
    )  # fmt: skip
    up.add_argument(
        "--database", choices=DATABASE_KINDS, default="sqlite",
        help="sqlite files under var/ (default) or a fresh PostgreSQL database per service",
    )  # fmt: skip
    up.add_argument(
        "--postgres", dest="database", action="store_const", const="postgres",
        help="same as --database postgres (the local server; CHAINCHAT_TEST_PG overrides its URL)",
    )  # fmt: skip
    sub.add_parser("down", help="stop a stack started with --detach")
    args = parser.parse_args(argv)
    if args.command == "up":
        args.scale = dict(args.scale)
        return cmd_up_detached(args) if args.detach else cmd_up(args)
    return cmd_down(args)


if __name__ == "__main__":
    sys.exit(main())
