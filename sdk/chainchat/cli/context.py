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
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from chainchat.cli.config import Config, Profile
from chainchat.client import ApiError, Client, Session
from chainchat.crypto import CryptoError
from chainchat.heads import HeadTracker
from chainchat.ledger_pin import LedgerPin
from chainchat.messenger import Messenger
from chainchat.verifier import LedgerVerifier

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
    ledger_option: str | None = None
    rpc_option: str | None = None
    #: `send` says "unconfirmed" in its one-line error instead of warning first
    warn_new_devices: bool = True

    def client(self) -> Client:
        async def persist(session: Session | None) -> None:
            self.profile.session = session
            self.config.save(self.profile)

        return Client(self.profile.server, session=self.profile.session, on_session_change=persist)

    def require_login(self) -> None:
        if self.profile.session is None or self.profile.user_id is None:
            raise CliError(f"not logged in (profile {self.profile.name}); run `chainchat login`")

    async def messenger(self, client: Client) -> Messenger:
        """This device's messenger: the profile's pins, key proofs checked on the pinned ledger."""
        self.require_login()
        if not self.profile.has_keys():
            raise CliError("this device has no keys yet; run `chainchat keys init`")
        assert self.profile.user_id is not None
        keys, pins = self.profile.load_keys(), self.profile.pins()
        messenger = Messenger(client, self.profile.user_id, keys, pins, on_key_change=self._warn)
        try:
            messenger.verifier = await self.verifier(client)
        except (ApiError, CliError, ValueError) as exc:
            self.err.print(f"[yellow]note:[/] key proofs are not checked on chain: {escape(str(exc))}")
        return messenger

    def _warn(self, user_id: str, old: set[str], new: set[str]) -> None:
        """A device appeared or went: said on stderr, never confirmed here."""
        added, removed = sorted(new - old), sorted(old - new)
        if added and not self.warn_new_devices:
            pass
        elif added and user_id == self.profile.user_id:
            self.err.print(
                f"[bold red]warning:[/] a new device was added to your account ({', '.join(added)}). "
                "If this was not you, revoke it: `chainchat keys revoke <key id>`; "
                "if it was, `chainchat keys confirm me`."
            )
        elif added:
            self.err.print(
                f"[bold yellow]warning:[/] user {user_id} has new devices ({', '.join(added)}): nothing is "
                f"sent to them until you compare `chainchat safety-number {user_id}` and run "
                f"`chainchat keys confirm {user_id}`."
            )
        if removed:
            self.err.print(f"[dim]note: devices of user {user_id} were removed: {', '.join(removed)}[/]")

    async def ledger_pin(self, client: Client) -> LedgerPin:
        """The pinned ledger: ``--ledger``/``CHAINCHAT_LEDGER``, else the profile's, else the server's
        on first use (saved, and said on stderr)."""
        state = self.profile.ledger_state()
        saved = LedgerPin.from_dict(state["pin"]) if state.get("pin") else None
        if self.ledger_option:
            pin = LedgerPin.parse(self.ledger_option)
            if saved != pin:
                self.profile.save_ledger_state({"pin": pin.to_dict()})  # another ledger: heads restart
            return pin
        if saved is not None:
            return saved
        info = await client.ledger_info()
        if not info.contract_address or not info.chain_id:
            raise CliError("the server names no ledger contract yet; pass --ledger <chain_id>:<address>")
        pin = LedgerPin(info.chain_id, info.contract_address, "first_use")
        self.profile.save_ledger_state({**state, "pin": pin.to_dict()})
        self.err.print(
            f"[dim]pinned ledger {pin} (first use; `chainchat ledger info` shows it, --ledger changes it)[/]"
        )
        return pin

    async def rpc_url(self, client: Client) -> str:
        """The chain RPC: ``--rpc``/``CHAINCHAT_RPC_URL``, else the server's public one, else localhost."""
        if self.rpc_option:
            return self.rpc_option
        try:
            public = (await client.ledger_info()).rpc_url_public
        except ApiError:
            public = None
        return str(public or DEFAULT_RPC_URL)

    async def verifier(self, client: Client, rpc_url: str | None = None) -> LedgerVerifier:
        """Checks proofs against the pinned ledger and the heads seen before (saved on exit)."""
        pin = await self.ledger_pin(client)
        state = _SavedState(self.profile)
        return LedgerVerifier(pin, rpc_url or await self.rpc_url(client), HeadTracker(state))

    def save_pins(self, messenger: Messenger) -> None:
        self.profile.save_pins(dict(messenger.pins))

    def emit(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Print ``data`` as JSON with --json, else the human rendering."""
        if self.as_json or human is None:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")
            sys.stdout.flush()
        else:
            human()


DEFAULT_RPC_URL = "http://127.0.0.1:8545"


class _SavedState(dict[str, Any]):
    """The profile's ledger.json as a dict that writes itself back on every change."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile.ledger_state())
        self._profile = profile

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._profile.save_ledger_state(dict(self))


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


def _jsonable(value: Any) -> Any:
    """``json.dumps`` fallback: a protocol model as its wire JSON, anything else as text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)
