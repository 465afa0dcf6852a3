"""`chainchat verify`: an e-mail token, or a message's proof checked against the chain itself."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from chainchat.cli.account import email_token
from chainchat.cli.context import CliError, command, get_ctx
from chainchat_protocol.proof import ProofObject

_MESSAGE_ID = re.compile(r"^[0-9a-fA-F-]{32,36}$|^[0-9A-HJKMNP-TV-Z]{26}$")


def looks_like_email_token(arg: str) -> bool:
    return "token=" in arg or not _MESSAGE_ID.match(arg)


@command
async def verify(
    target: str | None = typer.Argument(None, help="a message id, or the e-mail verification token/link"),
    file: Path | None = typer.Option(None, "--file", help="verify a saved proof object (JSON) instead"),
    rpc_url: str | None = typer.Option(
        None, "--rpc-url", "--rpc", help="the chain RPC to ask (default: global --rpc, else the server's)"
    ),
    save: Path | None = typer.Option(None, help="also write the fetched proof to this file"),
    kind: str = typer.Option("message", help="message or file (for ids)"),
) -> None:
    """Verify a message (or file) proof on chain — or, given a token/link, your e-mail address.

    The proof must be about the entry asked for (kind and id), name the pinned ledger, verify on
    chain, and be consistent with every tree head this profile verified before."""
    ctx = get_ctx()
    if file is None and target is None:
        raise CliError("give a message id, a verification token/link, or --file proof.json")
    if file is None and target is not None and looks_like_email_token(target):
        async with ctx.client() as client:
            result = await client.verify_email(email_token(target))
        ctx.emit(result, lambda: ctx.out.print(f"E-mail verified: account {result.status}."))
        return
    proof = await _load_proof(file, target, kind)
    if save is not None:
        save.write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    expect = (kind, target) if target else None
    if _anchored(proof):
        async with ctx.client() as client:
            verifier = await ctx.verifier(client, rpc_url or None)
            verdict = await verifier.verify(client, proof, expect=expect)
    else:  # refused before any ledger or chain is needed
        from chainchat.proof import verify_proof_onchain  # web3 is slow to import: only when used

        verdict = await verify_proof_onchain(proof, "", expect=expect)
    report = verdict.as_dict()
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
    return fetched.model_dump(mode="json")


def _anchored(proof: dict[str, Any]) -> bool:
    try:
        return ProofObject.model_validate(proof).status == "anchored"
    except ValidationError:
        return False


def _print_report(report: dict[str, Any]) -> None:
    ctx = get_ctx()
    entry = f"{report.get('kind')} {report.get('id')}"
    if report.get("code") == "not_anchored":
        ctx.out.print(f"proof status: {report['status']} — {entry} is not anchored yet; try again shortly")
        return
    mark = "[bold green]VALID[/]" if report["valid"] else f"[bold red]INVALID[/] {report.get('code')}:"
    ctx.out.print(f"{mark}  {escape(entry)}  {escape(report.get('reason') or '')}", highlight=False)
    for key in ("digest", "tree_size", "head_index", "leaf_index", "tx_hash", "block_number", "chain_id",
                "contract_address", "onchain_verify_inclusion", "local_verify_inclusion"):  # fmt: skip
        if key in report:
            ctx.out.print(f"  {key:<26} {report[key]}")
