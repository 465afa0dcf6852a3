"""Users, conversations and messages: search, chat new|list, send, history, watch, delete."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import typer
import websockets
from rich.table import Table

from chainchat.cli.context import Ctx, command, get_ctx
from chainchat.client import JSON, ApiError
from chainchat.crypto import CryptoError, PublicDeviceKey
from chainchat.messenger import Messenger
from chainchat_protocol.chat import MessageView

users_app = typer.Typer(help="Find people.", no_args_is_help=True)
chat_app = typer.Typer(help="Conversations.", no_args_is_help=True)


@users_app.command("search")
@command
async def users_search(query: str = typer.Argument(..., help="start of a name or e-mail")) -> None:
    """Find approved users by name or e-mail prefix."""
    ctx = get_ctx()
    async with ctx.client() as client:
        users = await client.search_users(query)
    table = Table("user id", "name")
    for user in users:
        table.add_row(user.user_id, user.display_name)
    ctx.emit(users, lambda: ctx.out.print(table))


@chat_app.command("new")
@command
async def chat_new(
    members: list[str] = typer.Argument(..., help="user ids of the other members"),
    title: str | None = typer.Option(None, help="group title (a group is made when given)"),
) -> None:
    """Start a direct conversation (one other member) or a group."""
    ctx = get_ctx()
    async with ctx.client() as client:
        conv = await client.create_conversation(members, title)
    ctx.emit(conv, lambda: ctx.out.print(f"{conv.kind} conversation {conv.conversation_id}"))


@chat_app.command("list")
@command
async def chat_list() -> None:
    """Your conversations with their unread counts."""
    ctx = get_ctx()
    async with ctx.client() as client:
        convs = await client.list_conversations()
    table = Table("conversation", "kind", "title / members", "last seq", "unread")
    for c in convs:
        table.add_row(
            c.conversation_id, c.kind, c.title or ", ".join(c.members), str(c.last_seq), str(c.unread_count)
        )
    ctx.emit(convs, lambda: ctx.out.print(table))


@command
async def send(
    conversation: str = typer.Argument(..., help="conversation id"),
    text: str = typer.Argument(..., help="the message"),
    accept_new_devices: bool = typer.Option(
        False, "--accept-new-devices", help="confirm new devices of the members (and yours) and send"
    ),
) -> None:
    """Encrypt TEXT on this device for every member device and send it. Refused while a member
    (or you) has a device you have not confirmed (`chainchat keys confirm <user>`)."""
    ctx = get_ctx()
    ctx.warn_new_devices = accept_new_devices  # refused otherwise, with the devices in its one line
    async with ctx.client() as client:
        messenger = await ctx.messenger(client)
        try:
            result = await messenger.send_text(conversation, text, accept_new_devices=accept_new_devices)
            note_unanchored(ctx, messenger, await messenger.recipients(conversation))
        finally:
            ctx.save_pins(messenger)
    ctx.emit(result, lambda: ctx.out.print(f"sent #{result.seq} ({result.message_id})"))


def note_unanchored(ctx: Ctx, messenger: Messenger, recipients: list[PublicDeviceKey]) -> None:
    """Keys sealed to that the log has not anchored yet: used, and said."""
    for key, status in messenger.not_yet_anchored(recipients):
        what = "not in the transparency log yet" if status == "pending" else "not anchored on chain yet"
        ctx.err.print(f"[dim]note: key {key.key_id} of user {key.user_id} is pending: {what}[/]")


async def render(ctx: Ctx, messenger: Messenger, message: MessageView, conversation_id: str) -> JSON:
    """Decrypt one message shown in ``conversation_id``; failures are shown, never hidden."""
    view: dict[str, Any] = {
        "message_id": message.message_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "created_at": message.created_at,
    }
    view["sender"] = await _display_name(messenger, message.sender_id)
    if message.deleted:
        view["deleted"] = True
    else:
        try:
            opened = await messenger.open_detailed(message, conversation_id=conversation_id)
            view["body"], view["key_committing"] = opened.body, opened.key_committing
        except CryptoError as exc:
            view["error"] = exc.code
    return view


_names: dict[str, str] = {}


async def _display_name(messenger: Messenger, user_id: str) -> str:
    """A peer's display name (cached); the id when the directory does not know it."""
    if user_id == messenger.user_id:
        return "me"
    if user_id not in _names:
        try:
            found = await messenger.client.request("GET", f"/users/{user_id}")
            _names[user_id] = str(found.get("display_name") or user_id)
        except ApiError:
            _names[user_id] = user_id
    return _names[user_id]


def _line(view: JSON) -> str:
    who = view.get("sender") or view.get("sender_id")
    if view.get("deleted"):
        return f"#{view['seq']} {who}: [deleted]"
    if "error" in view:
        return f"#{view['seq']} {who}: [cannot open: {view['error']}]"
    body = view["body"]
    # v1 envelopes: recipients cannot prove they all read the same text (issue 21)
    mark = "" if view.get("key_committing", True) else " [not key-committing]"
    if body.get("type") == "file":
        f = body.get("file", body)
        name, size, file_id = f.get("name"), f.get("size"), f.get("file_id")
        return f"#{view['seq']} {who}: [file {name} {size} bytes, id {file_id}]{mark}"
    return f"#{view['seq']} {who}: {body.get('text', '')}{mark}"


@command
async def history(
    conversation: str = typer.Argument(...),
    limit: int = typer.Option(50, min=1, max=200),
    after_seq: int | None = typer.Option(None),
    before_seq: int | None = typer.Option(None),
) -> None:
    """Show and decrypt a conversation's messages."""
    ctx = get_ctx()
    async with ctx.client() as client:
        messenger = await ctx.messenger(client)
        messages = await client.history(conversation, after_seq=after_seq, before_seq=before_seq, limit=limit)
        views = [await render(ctx, messenger, m, conversation) for m in messages]
        ctx.save_pins(messenger)

    def human() -> None:
        for v in views:
            ctx.out.print(_line(v), highlight=False, markup=False)

    ctx.emit(views, human)


@command
async def delete(message_id: str = typer.Argument(...)) -> None:
    """Delete a message you sent (admins: any); it stays in the log as a tombstone."""
    ctx = get_ctx()
    async with ctx.client() as client:
        result = await client.delete_message(message_id)
    ctx.emit(result or {"deleted": message_id}, lambda: ctx.out.print(f"deleted {message_id}"))


def ws_url(server: str) -> str:
    return server.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/api/v1/ws"


@command
async def watch(
    conversation: str | None = typer.Argument(None, help="only this conversation"),
    count: int | None = typer.Option(None, help="exit after this many messages"),
) -> None:
    """Print messages as they arrive; reconnects and catches up on what was missed."""
    ctx = get_ctx()
    async with ctx.client() as client:
        messenger = await ctx.messenger(client)
        watcher = _Watcher(ctx, messenger, conversation, count)
        await watcher.run()


class _Watcher:
    def __init__(self, ctx: Ctx, messenger: Messenger, conversation: str | None, count: int | None) -> None:
        self.ctx, self.messenger, self.only, self.left = ctx, messenger, conversation, count
        self.cursors = ctx.profile.cursors()

    async def run(self) -> None:
        delay = 0.5
        while self.left is None or self.left > 0:
            try:
                await self._session()
                delay = 0.5
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                self.ctx.err.print(f"[dim]connection lost ({type(exc).__name__}); reconnecting…[/]")
                await asyncio.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 15)

    async def _session(self) -> None:
        client = self.messenger.client
        headers = await client._auth_headers()  # refreshes the token when due
        token = headers["Authorization"].removeprefix("Bearer ")
        async with websockets.connect(ws_url(client.base_url), open_timeout=10, ping_interval=20) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            keepalive = asyncio.create_task(self._keepalive(ws))
            try:
                await self._catch_up()
                await self._receive(ws)
            finally:
                keepalive.cancel()

    @staticmethod
    async def _keepalive(ws: websockets.ClientConnection) -> None:
        # the hub closes a connection with no client frame for 60 s; protocol pings don't count
        while True:
            await asyncio.sleep(25)
            await ws.send(json.dumps({"type": "ping"}))

    async def _receive(self, ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "message":
                await self._show(
                    MessageView.model_validate(frame["message"]), str(frame.get("conversation_id"))
                )
            elif frame.get("type") == "error":
                self.ctx.err.print(f"server: {frame.get('message') or frame}", markup=False)
            elif frame.get("type") in ("key_changed", "device_added"):
                await self.messenger.devices_of(frame["user_id"], refresh=True)
                self.ctx.save_pins(self.messenger)
            if self.left is not None and self.left <= 0:
                return

    async def _catch_up(self) -> None:
        for conv in await self.messenger.client.list_conversations():
            cid = conv.conversation_id
            if self.only and cid != self.only:
                continue
            after = self.cursors.get(cid)
            if after is None:
                self.cursors[cid] = conv.last_seq
                continue
            for message in await self.messenger.client.history(cid, after_seq=after, limit=200):
                await self._show(message, cid)

    async def _show(self, message: MessageView, cid: str) -> None:
        """Show a message delivered for (or listed in) conversation ``cid``."""
        if self.only and cid != self.only:
            return
        if message.seq <= self.cursors.get(cid, 0):
            return  # already shown (a catch-up and a live delivery may overlap)
        view = await render(self.ctx, self.messenger, message, cid)
        view["conversation_id"] = cid
        self.cursors[cid] = message.seq
        self.ctx.profile.save_cursors(self.cursors)
        self.ctx.emit(view, lambda: self.ctx.out.print(_line(view), highlight=False, markup=False))
        if self.left is not None:
            self.left -= 1
