"""What every command shares: the chosen profile, output mode, an API client that keeps the session."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from chainchat.cli.config import Config, Profile
from chainchat.client import ApiError, Client, Session
from chainchat.crypto import CryptoError
from chainchat.messenger import Messenger

P = ParamSpec("P")
T = TypeVar("T")


class CliError(Exception):
    """A failure to report as one line (exit code 1)."""


@dataclass
class Ctx:
    config: Config
    profile: Profile
    as_json: bool
    debug: bool
    out: Console
    err: Console

    def client(self) -> Client:
        async def persist(session: Session | None) -> None:
            self.profile.session = session
            self.config.save(self.profile)

        return Client(self.profile.server, session=self.profile.session, on_session_change=persist)

    def require_login(self) -> None:
        if self.profile.session is None or self.profile.user_id is None:
            raise CliError(f"not logged in (profile {self.profile.name}); run `chainchat login`")

    def messenger(self, client: Client) -> Messenger:
        self.require_login()
        if not self.profile.has_keys():
            raise CliError("this device has no keys yet; run `chainchat keys init`")
        pins = self.profile.pins()

        def warn(user_id: str, old: set[str], new: set[str]) -> None:
            self.err.print(
                f"[bold yellow]warning:[/] the keys of user {user_id} changed "
                f"(was {', '.join(sorted(old))}; now {', '.join(sorted(new)) or 'none'}). "
                "Compare safety numbers out of band: `chainchat safety-number " + user_id + "`"
            )

        assert self.profile.user_id is not None
        return Messenger(client, self.profile.user_id, self.profile.load_keys(), pins, on_key_change=warn)

    def save_pins(self, messenger: Messenger) -> None:
        self.profile.save_pins(dict(messenger.pins))

    def emit(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Print ``data`` as JSON with --json, else the human rendering."""
        if self.as_json or human is None:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
            sys.stdout.flush()
        else:
            human()


_current: list[Ctx] = []


def set_ctx(ctx: Ctx) -> None:
    """Called once per invocation by the root callback (global options → state)."""
    _current[:] = [ctx]


def get_ctx() -> Ctx:
    if not _current:
        raise CliError("internal: no command context")
    return _current[0]


def command(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async command; any expected failure becomes one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        ctx = get_ctx()
        try:
            return asyncio.run(func(*args, **kwargs))
        except (ApiError, CryptoError, CliError, OSError, ValueError) as exc:
            if ctx.debug:
                traceback.print_exc()
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            code = f" [{exc.code}]" if isinstance(exc, ApiError | CryptoError) and exc.code else ""
            ctx.err.print(f"[bold red]error:[/] {escape(message + code)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except (typer.Exit, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug still gets one line, the trace with --debug
            if ctx.debug:
                traceback.print_exc()
            ctx.err.print(
                f"[bold red]error:[/] unexpected {type(exc).__name__}: {exc} (--debug shows details)"
            )
            raise typer.Exit(1) from None

    return wrapper
