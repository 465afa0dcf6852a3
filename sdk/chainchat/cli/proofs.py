"""`chainchat verify`: an e-mail token, or a message's proof checked against the chain itself."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import typer

from chainchat.cli.account import email_token
from chainchat.cli.context import CliError, command, get_ctx

_MESSAGE_ID = re.compile(r"^[0-9a-fA-F-]{32,36}$|^[0-9A-HJKMNP-TV-Z]{26}$")


def looks_like_email_token(arg: str) -> bool:
    return "token=" in arg or not _MESSAGE_ID.match(arg)


@command
async def verify(
    target: str | None = typer.Argument(None, help="a message id, or the e-mail verification token/link"),
    file: Path | None = typer.Option(None, "--file", help="verify a saved proof object (JSON) instead"),
    rpc_url: str = typer.Option(
        os.environ.get("CHAINCHAT_RPC_URL", "http://127.0.0.1:8545"),
        help="the only thing trusted: a chain RPC",
    ),
    save: Path | None = typer.Option(None, help="also write the fetched proof to this file"),
    kind: str = typer.Option("message", help="message or file (for ids)"),
) -> None:
    """Verify a message (or file) proof on chain — or, given a token/link, your e-mail address."""
    ctx = get_ctx()
    if file is None and target is None:
        raise CliError("give a message id, a verification token/link, or --file proof.json")
    if file is None and target is not None and looks_like_email_token(target):
        async with ctx.client() as client:
            result = await client.verify_email(email_token(target))
        ctx.emit(result, lambda: ctx.out.print(f"E-mail verified: account {result.get('status')}."))
        return
    proof = await _load_proof(file, target, kind)
    if save is not None:
        save.write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    report = await _check(proof, rpc_url)
    ctx.emit(report, lambda: _print_report(report))
    if not report["valid"]:
        raise SystemExit(1)


async def _load_proof(file: Path | None, target: str | None, kind: str) -> dict[str, Any]:
    if file is not None:
        try:
            proof: dict[str, Any] = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(f"cannot read proof file {file}: {exc}") from None
        return proof
    ctx = get_ctx()
    assert target is not None
    async with ctx.client() as client:
        fetched = await (client.file_proof(target) if kind == "file" else client.message_proof(target))
    return dict(fetched)


async def _check(proof: dict[str, Any], rpc_url: str) -> dict[str, Any]:
    if proof.get("status") != "anchored":
        return {
            "valid": False,
            "status": proof.get("status"),
            "reason": "not anchored yet; try again shortly",
        }
    from chainchat.proof import verify_proof_onchain

    result = await verify_proof_onchain(proof, rpc_url)
    return result.as_dict()


def _print_report(report: dict[str, Any]) -> None:
    ctx = get_ctx()
    if report.get("status") not in (None, "anchored"):
        ctx.out.print(f"proof status: {report['status']} — {report.get('reason')}")
        return
    mark = "[bold green]VALID[/]" if report["valid"] else "[bold red]INVALID[/]"
    ctx.out.print(f"{mark}  {report.get('reason') or ''}")
    for key in ("tree_size", "head_index", "leaf_index", "tx_hash", "block_number", "chain_id",
                "contract_address", "onchain_verify_inclusion", "local_verify_inclusion"):  # fmt: skip
        if key in report:
            ctx.out.print(f"  {key:<26} {report[key]}")
