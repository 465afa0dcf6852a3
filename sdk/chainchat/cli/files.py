"""Encrypted attachments: `file send` and `file get` (with progress, resumable by Range)."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from chainchat.cli.context import CliError, command, get_ctx
from chainchat.client import JSON
from chainchat.crypto import aencrypt_chunks, ciphertext_size, decrypt_file, generate_file_key
from chainchat_protocol.b64 import b64d_exact, b64e

file_app = typer.Typer(help="Encrypted files.", no_args_is_help=True)
CHUNK = 256 * 1024


def _progress(enabled: bool) -> Progress:
    return Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        disable=not enabled, transient=True,
    )  # fmt: skip


async def _read(path: Path, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            yield block


@file_app.command("send")
@command
async def file_send(
    conversation: str = typer.Argument(...),
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
) -> None:
    """Encrypt PATH on this device, upload the ciphertext, and send the key inside an encrypted message."""
    ctx = get_ctx()
    size = path.stat().st_size
    key = generate_file_key()
    plain_digest = hashlib.sha256()
    async with ctx.client() as client:
        messenger = await ctx.messenger(client)
        with _progress(not ctx.as_json) as progress:
            task = progress.add_task(f"upload {path.name}", total=ciphertext_size(size))

            async def counted() -> AsyncIterator[bytes]:
                async for chunk in aencrypt_chunks(key, _read(path, plain_digest)):
                    progress.advance(task, len(chunk))
                    yield chunk

            uploaded = await client.upload_file(conversation, counted(), ciphertext_size(size))
        body: JSON = {
            "type": "file",
            "file": {
                "file_id": uploaded.file_id, "cid": uploaded.cid, "key": b64e(key), "name": path.name,
                "mime": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                "size": size, "sha256": plain_digest.hexdigest(),
            },
        }  # fmt: skip
        sent = await messenger.send(conversation, body, file_ids=[uploaded.file_id])
        ctx.save_pins(messenger)
    result = {**uploaded.model_dump(mode="json"), **sent.model_dump(mode="json")}
    ctx.emit(
        result,
        lambda: ctx.out.print(f"sent {path.name} ({size} bytes) as #{sent.seq}, file {uploaded.file_id}"),
    )


async def _find_file_message(conversation: str, message_id: str) -> JSON:
    ctx = get_ctx()
    async with ctx.client() as client:
        messenger = await ctx.messenger(client)
        before: int | None = None
        while True:
            page = await client.history(conversation, before_seq=before, limit=200)
            for message in page:
                if message.message_id == message_id:
                    body = await messenger.open(message, conversation_id=conversation)
                    if body.get("type") != "file":
                        raise CliError("that message carries no file")
                    file_info: JSON = body.get("file", body)
                    return file_info
            if len(page) < 200:
                raise CliError(f"no message {message_id} in that conversation")
            before = min(m.seq for m in page)


@file_app.command("get")
@command
async def file_get(
    conversation: str = typer.Argument(...),
    message_id: str = typer.Argument(..., help="the message that carries the file"),
    out: Path | None = typer.Option(None, "--out", "-o", help="where to write (default: the file's name)"),
) -> None:
    """Download, decrypt and check a file; an interrupted download resumes where it stopped."""
    ctx = get_ctx()
    info = await _find_file_message(conversation, message_id)
    target = out or Path(Path(str(info["name"])).name)
    partial = target.with_name(target.name + ".ccenc")
    have = partial.stat().st_size if partial.exists() else 0
    async with ctx.client() as client:
        with _progress(not ctx.as_json) as progress:
            task = progress.add_task(
                f"download {target.name}", total=ciphertext_size(int(info["size"])), completed=have
            )
            async with client.download_file(info["file_id"], start=have) as resp:
                if have and resp.status_code != 206:
                    have = 0  # the server ignored the range: start over
                with partial.open("ab" if have else "wb") as handle:
                    async for chunk in resp.aiter_bytes(CHUNK):
                        handle.write(chunk)
                        progress.advance(task, len(chunk))
    stream = decrypt_file(b64d_exact(str(info["key"]), 32), partial, target)
    if stream.plaintext_sha256 != info["sha256"]:
        target.unlink(missing_ok=True)
        raise CliError("the decrypted file does not match the sender's SHA-256; deleted it")
    partial.unlink()
    result = {"path": str(target), "size": stream.plaintext_size, "sha256": stream.plaintext_sha256}
    ctx.emit(
        result, lambda: ctx.out.print(f"saved {target} ({stream.plaintext_size} bytes, SHA-256 verified)")
    )
