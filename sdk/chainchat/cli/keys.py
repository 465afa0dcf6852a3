"""Device keys and safety numbers."""

from __future__ import annotations

import os
import socket

import typer

from chainchat.cli.account import with_reauth
from chainchat.cli.context import CliError, command, get_ctx
from chainchat.client import Client
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


def _default_label() -> str:
    return f"chainchat CLI on {socket.gethostname()}"[:64]


async def _publish(client: Client, keys: DeviceKeys, label: str | None) -> dict[str, object]:
    """Publish the keys; a second device of the account asks for the password (recent auth)."""
    body = keys.publish_body(sorted(SUITES))
    result = await with_reauth(
        client,
        lambda: client.publish_keys(
            body["x25519_public"], body["ed25519_public"], body["suite_support"], label=label
        ),
    )
    return result.model_dump(mode="json")


LABEL = typer.Option(None, "--label", help="a name for this device, shown to you in your device list")


@keys_app.command("init")
@command
async def init(
    passphrase: bool = typer.Option(False, "--passphrase", help="seal the key file with a passphrase"),
    label: str | None = LABEL,
) -> None:
    """Create this device's key pairs (kept here, 0600) and publish the public keys. A second
    device of the account asks for the password again (CHAINCHAT_PASSWORD)."""
    ctx = get_ctx()
    ctx.require_login()
    if ctx.profile.has_keys():
        raise CliError(f"keys already exist ({ctx.profile.key_path}); use `chainchat keys rotate`")
    keys = DeviceKeys.generate()
    sealing = _passphrase(passphrase)
    async with ctx.client() as client:
        # published first: a refused publication (wrong password) leaves no unpublished keys here
        result = await _publish(client, keys, label or _default_label())
    ctx.profile.save_keys(keys, sealing)
    ctx.emit(result, lambda: ctx.out.print(f"Device keys created and published: key id {keys.key_id}"))


@keys_app.command("rotate")
@command
async def rotate(passphrase: bool = typer.Option(False, "--passphrase"), label: str | None = LABEL) -> None:
    """Replace this device's keys with new ones and publish them (peers see a key change); asks
    for the password again (CHAINCHAT_PASSWORD)."""
    ctx = get_ctx()
    ctx.require_login()
    keys = DeviceKeys.generate()
    old = ctx.profile.load_keys() if ctx.profile.has_keys() else None
    async with ctx.client() as client:
        result = await _publish(client, keys, label or _default_label())
        if old is not None:
            old_id = old.key_id
            await with_reauth(client, lambda: client.revoke_device(old_id))
    ctx.profile.save_keys(keys, _passphrase(passphrase))
    ctx.emit(result, lambda: ctx.out.print(f"New key id {keys.key_id} published."))


@keys_app.command("devices")
@command
async def devices() -> None:
    """List your account's devices (revoked ones too): key id, name, when added or revoked."""
    ctx = get_ctx()
    ctx.require_login()
    async with ctx.client() as client:
        found = await client.my_devices()
    mine = ctx.profile.load_keys().key_id if ctx.profile.has_keys() else None

    def human() -> None:
        for d in found:
            state = f"revoked {d.revoked_at}" if d.revoked_at else f"added {d.created_at}"
            here = " (this device)" if d.key_id == mine else ""
            ctx.out.print(f"{d.key_id}  {d.label or '-'}  {state}{here}")

    ctx.emit(found, human)


@keys_app.command("revoke")
@command
async def revoke(
    key_id: str = typer.Argument(..., help="the device's key id (`chainchat keys devices`)"),
) -> None:
    """Revoke a device of your account: it is no longer sealed to. Asks for the password again."""
    ctx = get_ctx()
    ctx.require_login()
    async with ctx.client() as client:
        await with_reauth(client, lambda: client.revoke_device(key_id))
    ctx.emit({"revoked": key_id}, lambda: ctx.out.print(f"Device {key_id} revoked."))


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
    ids_a = [k.key_id for k in mine.keys]
    ids_b = [k.key_id for k in theirs.keys]
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
