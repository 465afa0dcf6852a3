"""The `chainchat` command line: a secure messenger client in a shell.

Every command exits 0 on success and non-zero with one line on stderr otherwise (a traceback
only with --debug); --json prints machine-readable output.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from chainchat.cli import account, admin, files, keys, messages, proofs
from chainchat.cli.config import Config
from chainchat.cli.context import Ctx, set_ctx

app = typer.Typer(
    name="chainchat",
    help="ChainChat: end-to-end encrypted chat with proofs anchored on chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    ctx: typer.Context,
    profile: str | None = typer.Option(
        None, "--profile", "-p", envvar="CHAINCHAT_PROFILE", help="account profile"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
    ledger: str | None = typer.Option(
        None, "--ledger", envvar="CHAINCHAT_LEDGER", help="the ledger to trust: <chain_id>:<contract address>"
    ),
    rpc: str | None = typer.Option(
        None, "--rpc", envvar="CHAINCHAT_RPC_URL", help="your chain RPC (default: the server's)"
    ),
) -> None:
    config = Config()
    ctx.obj = state = Ctx(
        config=config,
        profile=config.profile(profile),
        as_json=as_json,
        debug=debug,
        out=Console(highlight=False),
        err=Console(stderr=True, highlight=False),
        ledger_option=ledger,
        rpc_option=rpc,
    )
    set_ctx(state)


app.command()(account.register)
app.command("verify-email")(account.verify_email)
app.command()(account.login)
app.command()(account.logout)
app.command()(account.whoami)
app.command()(proofs.verify)
app.command()(messages.send)
app.command()(messages.history)
app.command()(messages.watch)
app.command()(messages.delete)
app.command("safety-number")(keys.safety_number_cmd)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(messages.users_app, name="users")
app.add_typer(messages.chat_app, name="chat")
app.add_typer(files.file_app, name="file")
app.add_typer(admin.admin_app, name="admin")
app.add_typer(admin.ledger_app, name="ledger")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
