"""Account commands: register, verify-email, login, logout, whoami."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlparse

import typer

from chainchat.cli.context import CliError, command, get_ctx
from chainchat.client import ApiError, Client

T = TypeVar("T")


def email_token(token_or_link: str) -> str:
    """Accept the bare token or the whole link from the e-mail."""
    if "token=" in token_or_link:
        values = parse_qs(urlparse(token_or_link).query).get("token")
        if not values:
            raise CliError("the link has no token")
        return values[0]
    return token_or_link.strip()


def _password(confirm: bool = False) -> str:
    from_env = os.environ.get("CHAINCHAT_PASSWORD")
    if from_env:
        return from_env
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


async def reauthenticate(client: Client) -> None:
    """Give the password (``CHAINCHAT_PASSWORD`` or a prompt) again, and the TOTP code
    (``CHAINCHAT_TOTP`` or a prompt) when the account asks for it."""
    password = _password()
    try:
        await client.reauth(password, os.environ.get("CHAINCHAT_TOTP") or None)
    except ApiError as exc:
        if exc.code != "mfa_required":
            raise
        await client.reauth(password, typer.prompt("Authentication code"))


async def with_reauth(client: Client, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call``; when the server wants recent authentication, reauthenticate once and retry."""
    try:
        return await call()
    except ApiError as exc:
        if exc.code != "reauth_required":
            raise
    await reauthenticate(client)
    return await call()


@command
async def register(
    email: str = typer.Option(..., help="your e-mail address (a verification link is sent there)"),
    display_name: str = typer.Option(..., "--name", help="the name others see"),
    server: str | None = typer.Option(
        None, help="gateway URL (default: the profile's, or http://127.0.0.1:8000)"
    ),
) -> None:
    """Create an account; then open the link in the e-mail or run `chainchat verify-email`."""
    ctx = get_ctx()
    if server:
        ctx.profile.server = server.rstrip("/")
    async with ctx.client() as client:
        result = await client.register(email, _password(confirm=True), display_name)
    ctx.profile.email = email
    ctx.profile.user_id = result.user_id
    ctx.config.save(ctx.profile, make_current=True)
    ctx.emit(result, lambda: ctx.out.print(f"Registered {email}; check your mail for the verification link."))


@command
async def verify_email(
    token: str = typer.Argument(..., help="the token, or the whole link from the e-mail"),
) -> None:
    """Confirm your e-mail address with the token from the verification mail."""
    ctx = get_ctx()
    async with ctx.client() as client:
        result = await client.verify_email(email_token(token))
    status = result.status
    note = " An admin must approve the account before you can log in." if status == "pending_approval" else ""
    ctx.emit(result, lambda: ctx.out.print(f"E-mail verified: account {status}.{note}"))


@command
async def login(
    email: str | None = typer.Option(None, help="account e-mail (default: the profile's)"),
    server: str | None = typer.Option(None, help="gateway URL"),
    totp: str | None = typer.Option(None, help="the 6-digit code of your authenticator app"),
) -> None:
    """Log in; asks for the TOTP code when the account has MFA on."""
    ctx = get_ctx()
    if server:
        ctx.profile.server = server.rstrip("/")
    email = email or ctx.profile.email or typer.prompt("E-mail")
    password = _password()
    async with ctx.client() as client:
        try:
            session = await client.login(email, password, totp)
        except ApiError as exc:
            if exc.code != "mfa_required" or totp:
                raise
            code = typer.prompt("Authentication code")
            session = await client.login(email, password, code)
    ctx.profile.email = email
    ctx.profile.user_id = session.user.get("user_id") or session.user.get("id")
    ctx.profile.session = session
    ctx.config.save(ctx.profile, make_current=True)
    name = session.user.get("display_name", email)
    ctx.emit(session.user, lambda: ctx.out.print(f"Logged in as {name} ({ctx.profile.user_id})."))


@command
async def logout() -> None:
    """Revoke this device's session."""
    ctx = get_ctx()
    async with ctx.client() as client:
        await client.logout()
    ctx.profile.session = None
    ctx.config.save(ctx.profile)
    ctx.emit({"logged_out": True}, lambda: ctx.out.print("Logged out."))


@command
async def whoami() -> None:
    """Show the logged-in account."""
    ctx = get_ctx()
    ctx.require_login()
    async with ctx.client() as client:
        me = await client.me()
    ctx.emit(
        me,
        lambda: ctx.out.print(
            f"{me.display_name} <{me.email}>  id {me.id}  "
            f"role {me.role}  status {me.status}  server {ctx.profile.server}"
        ),
    )
