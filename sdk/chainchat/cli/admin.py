"""Admin commands and ledger status."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from chainchat.cli.context import command, get_ctx
from chainchat.client import Client
from chainchat.heads import HeadTracker, LogForked, TreeHead, check_consistent

admin_app = typer.Typer(help="Administration (admin role).", no_args_is_help=True)
ledger_app = typer.Typer(help="The transparency log.", no_args_is_help=True)


@admin_app.command("pending")
@command
async def pending() -> None:
    """Accounts waiting for approval."""
    ctx = get_ctx()
    async with ctx.client() as client:
        users = await client.admin_users("pending")
    table = Table("user id", "e-mail", "name", "registered")
    for u in users:
        table.add_row(u.id, u.email, u.display_name, str(u.created_at))
    ctx.emit(users, lambda: ctx.out.print(table))


def _action(verb: str):  # type: ignore[no-untyped-def]
    @command
    async def run(user_id: str = typer.Argument(...)) -> None:
        ctx = get_ctx()
        async with ctx.client() as client:
            result = await client.admin_action(user_id, verb)
        ctx.emit(result, lambda: ctx.out.print(f"{verb}: {user_id} -> {result.status}"))

    run.__doc__ = f"{verb.capitalize()} an account."
    return run


for _verb in ("approve", "reject", "disable", "enable"):
    admin_app.command(_verb)(_action(_verb))


@admin_app.command("audit")
@command
async def audit(
    type_: str | None = typer.Option(None, "--type", help="event type, e.g. login_failed"),
    user_id: str | None = typer.Option(None, "--user"),
    since: str | None = typer.Option(None, help="RFC 3339 time"),
    limit: int = typer.Option(50, min=1, max=500),
) -> None:
    """Security events, each with its transparency-log status."""
    ctx = get_ctx()
    async with ctx.client() as client:
        events = await client.audit(type=type_, user_id=user_id, since=since, limit=limit)
    table = Table("at", "type", "user", "proof")
    for e in events:
        table.add_row(e.at, e.type, str(e.user_id), e.proof_status)
    ctx.emit(events, lambda: ctx.out.print(table))


@ledger_app.command("info")
@command
async def ledger_info() -> None:
    """Chain, contract, latest anchored tree head and backlog — and the ledger this profile trusts."""
    ctx = get_ctx()
    async with ctx.client() as client:
        pin = await ctx.ledger_pin(client)
        info = (await client.ledger_info()).model_dump(mode="json")
        tracker = HeadTracker(ctx.profile.ledger_state())
        largest = tracker.largest.to_dict() if tracker.largest else None
        info["pinned"] = {**pin.to_dict(), "largest_verified_head": largest}
        info["ledger_mismatch"] = not pin.names(info.get("chain_id"), info.get("contract_address"))
        info["log_forked"] = await _forked(client, tracker, info.get("latest_head"))

    def human() -> None:
        head = info.get("latest_head") or {}
        ctx.out.print(f"chain id          {info.get('chain_id')}")
        ctx.out.print(f"contract          {info.get('contract_address')}")
        ctx.out.print(f"latest head       #{head.get('index')}  size {head.get('tree_size')}")
        ctx.out.print(f"root hash         {head.get('root_hash')}")
        ctx.out.print(f"anchored in       tx {head.get('tx_hash')}  block {head.get('block_number')}")
        ctx.out.print(f"pending leaves    {info.get('pending_leaves')}")
        ctx.out.print(f"pinned ledger     {pin} ({pin.source.replace('_', ' ')})")
        largest = tracker.largest
        ctx.out.print(f"largest verified  {f'size {largest.tree_size}' if largest else 'none yet'}")
        if info["ledger_mismatch"]:
            ctx.err.print("[bold red]ledger_mismatch:[/] the server names another ledger than the pinned one")
        if info["log_forked"]:
            ctx.err.print(f"[bold red]log_forked:[/] {info['log_forked']}", markup=True)

    ctx.emit(info, human)
    if info["ledger_mismatch"] or info["log_forked"]:
        raise SystemExit(1)


async def _forked(client: Client, tracker: HeadTracker, latest: dict[str, Any] | None) -> str | None:
    """The server's latest head checked against the largest one verified here (not kept: it was
    not checked on chain)."""
    known = tracker.largest
    if not latest or known is None:
        return None
    try:
        await check_consistent(client, known, TreeHead(int(latest["tree_size"]), str(latest["root_hash"])))
    except LogForked as exc:
        return exc.message
    return None
