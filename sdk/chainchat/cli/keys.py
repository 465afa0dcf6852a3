"""Device keys and safety numbers."""

from __future__ import annotations

import os

import typer

from chainchat.cli.context import CliError, command, get_ctx
from chainchat.crypto import DeviceKeys, format_safety_number, safety_number
from chainchat_protocol.envelope import SUITES

keys_app = typer.Typer(help="This device's encryption and signing keys.", no_args_is_help=True)


def _passphrase(seal: bool) -> str | None:
    if not seal:
        return None
    value = os.environ.get("CHAINCHAT_PASSPHRASE") or typer.prompt(
        "Passphrase for the key file", hide_input=True, confirmation_prompt=True
    )
    return str(value)


async def _publish(keys: DeviceKeys) -> dict[str, object]:
    ctx = get_ctx()
    async with ctx.client() as client:
        body = keys.publish_body(sorted(SUITES))
        result = await client.publish_keys(
            body["x25519_public"], body["ed25519_public"], body["suite_support"]
        )
    return dict(result)


@keys_app.command("init")
@command
async def init(
    passphrase: bool = typer.Option(False, "--passphrase", help="seal the key file with a passphrase"),
) -> None:
    """Create this device's key pairs (kept here, 0600) and publish the public keys."""
    ctx = get_ctx()
    ctx.require_login()
    if ctx.profile.has_keys():
        raise CliError(f"keys already exist ({ctx.profile.key_path}); use `chainchat keys rotate`")
    keys = DeviceKeys.generate()
    ctx.profile.save_keys(keys, _passphrase(passphrase))
    result = await _publish(keys)
    ctx.emit(result, lambda: ctx.out.print(f"Device keys created and published: key id {keys.key_id}"))


@keys_app.command("rotate")
@command
async def rotate(passphrase: bool = typer.Option(False, "--passphrase")) -> None:
    """Replace this device's keys with new ones and publish them (peers see a key change)."""
    ctx = get_ctx()
    ctx.require_login()
    keys = DeviceKeys.generate()
    old = ctx.profile.load_keys() if ctx.profile.has_keys() else None
    result = await _publish(keys)
    if old is not None:
        async with ctx.client() as client:
            await client.request("DELETE", f"/keys/me/{old.key_id}")
    ctx.profile.save_keys(keys, _passphrase(passphrase))
    ctx.emit(result, lambda: ctx.out.print(f"New key id {keys.key_id} published."))


@keys_app.command("show")
@command
async def show() -> None:
    """Show this device's public keys and key id."""
    ctx = get_ctx()
    keys = ctx.profile.load_keys()
    body = {"key_id": keys.key_id, **keys.publish_body(sorted(SUITES))}

    def human() -> None:
        for k, v in body.items():
            ctx.out.print(f"{k}: {v}")

    ctx.emit(body, human)


@keys_app.command("fingerprint")
@command
async def fingerprint() -> None:
    """This device's key id, grouped for reading aloud."""
    ctx = get_ctx()
    key_id = ctx.profile.load_keys().key_id
    grouped = " ".join(key_id[i : i + 4] for i in range(0, len(key_id), 4))
    ctx.emit({"key_id": key_id}, lambda: ctx.out.print(grouped))


@command
async def safety_number_cmd(user: str = typer.Argument(..., help="the other user's id")) -> None:
    """The safety number of you and USER: compare it with them out of band."""
    ctx = get_ctx()
    ctx.require_login()
    assert ctx.profile.user_id is not None
    async with ctx.client() as client:
        mine = await client.get_keys(ctx.profile.user_id)
        theirs = await client.get_keys(user)
    ids_a = [k["key_id"] for k in mine.get("keys", [])]
    ids_b = [k["key_id"] for k in theirs.get("keys", [])]
    if not ids_b:
        raise CliError(f"user {user} has published no keys")
    number = safety_number(ctx.profile.user_id, ids_a, user, ids_b)
    ctx.emit({"safety_number": number}, lambda: ctx.out.print(format_safety_number(number)))


@keys_app.command("confirm")
@command
async def confirm(
    users: list[str] = typer.Argument(..., help="user ids whose devices you checked (`me`: your own)"),
) -> None:
    """Confirm the devices USERS have now (after comparing safety numbers, or, for `me`, checking
    `chainchat keys devices`): messages are sealed to them from now on."""
    ctx = get_ctx()
    ctx.require_login()
    done: dict[str, list[str]] = {}
    async with ctx.client() as client:
        messenger = await ctx.messenger(client)
        try:
            for user in users:
                user_id = str(ctx.profile.user_id) if user == "me" else user
                done[user_id] = await messenger.confirm(user_id)
        finally:
            ctx.save_pins(messenger)

    def human() -> None:
        for user_id, new in done.items():
            added = f"newly confirmed: {', '.join(new)}" if new else "nothing new"
            ctx.out.print(f"confirmed the devices of {user_id} ({added})")

    ctx.emit({"confirmed": done}, human)
