"""Outgoing mail: queued in the auth database in the caller's transaction, sent by a background loop.

SMTP being down never fails a registration: the row waits and is retried with bounded back-off.
Every instance may run the loop; a row is leased (``next_attempt_at`` moved forward with a
conditional update) before sending, so two instances do not send the same mail twice.
"""

from __future__ import annotations

import asyncio
import html
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
from prometheus_client import Counter, Gauge
from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.models import MailMessage
from chainchat_auth.settings import AuthSettings
from chainchat_service.db import Database, utcnow
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, supervise

log = get_logger(__name__)

MAIL_SENT = Counter("chainchat_auth_mail_sent_total", "Mails handed to the SMTP server")
MAIL_FAILED = Counter("chainchat_auth_mail_failures_total", "Failed SMTP attempts")
MAIL_BACKLOG = Gauge("chainchat_auth_mail_backlog", "Mails waiting to be sent")

LEASE = timedelta(seconds=60)
MAX_BACKOFF_S = 60.0


def backoff_seconds(attempts: int) -> float:
    """Delay before the next attempt: 1, 2, 4 … seconds, capped at one minute."""
    return float(min(2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


def queue_mail(session: AsyncSession, to: str, subject: str, text: str, html_body: str) -> MailMessage:
    """Add a mail to the outbox in ``session``; it is sent after the caller commits."""
    row = MailMessage(to_addr=to, subject=subject, text_body=text, html_body=html_body)
    session.add(row)
    return row


def link_mail(settings: AuthSettings, *, to: str, name: str, purpose: str, link: str) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a mail whose point is one link (verify or reset)."""
    if purpose == "verify":
        subject = "Verify your ChainChat e-mail address"
        intro = "Welcome to ChainChat. Please confirm your e-mail address by opening this link"
        outro = "The link is valid for 24 hours. If you did not sign up, ignore this mail."
    else:
        subject = "Reset your ChainChat password"
        intro = "Someone asked to reset the password of your ChainChat account. To choose a new one, open"
        outro = "The link is valid for one hour and signs out every session. If it was not you, ignore it."
    text = f"Hello {name},\n\n{intro}:\n\n{link}\n\n{outro}\n"
    safe_name, safe_link = html.escape(name), html.escape(link, quote=True)
    body = (
        f"<!doctype html><html><body><p>Hello {safe_name},</p><p>{html.escape(intro)}:</p>"
        f'<p><a href="{safe_link}">{safe_link}</a></p><p>{html.escape(outro)}</p></body></html>'
    )
    return subject, text, body


DEVICE_ADDED_SUBJECT = "A new device was added to your ChainChat account"


def device_added_mail(
    settings: AuthSettings, *, name: str, key_id: str, label: str | None, at: str
) -> tuple[str, str, str]:
    """Subject, text and HTML of the notice that a device key was added to the account."""
    settings_url = f"{settings.public_url.rstrip('/')}/settings"
    facts = [("When", at), ("Device", label or "(no name given)"), ("Key id", key_id)]
    lines = "\n".join(f"  {k}: {v}" for k, v in facts)
    steps = [
        f"in the web client: Settings → Devices ({settings_url}), then Revoke next to the key id;",
        f"or with the command line client: chainchat keys revoke {key_id};",
        f"or through the API: DELETE /api/v1/keys/me/{key_id} (asks for your password again).",
    ]
    intro = "A new device can now read the messages sent to you from here on."
    outro = (
        "If this was you, there is nothing to do. If it was not you, revoke the device at once"
        " and change your password:"
    )
    text = f"Hello {name},\n\n{intro}\n\n{lines}\n\n{outro}\n" + "".join(f"  - {step}\n" for step in steps)
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts
    )
    items = "".join(f"<li>{html.escape(step)}</li>" for step in steps)
    body = (
        f"<!doctype html><html><body><p>Hello {html.escape(name)},</p><p>{html.escape(intro)}</p>"
        f"<table>{rows}</table><p>{html.escape(outro)}</p><ul>{items}</ul></body></html>"
    )
    return DEVICE_ADDED_SUBJECT, text, body


class MailSender:
    """The background loop that drains ``mail_outbox``."""

    def __init__(self, db: Database, settings: AuthSettings) -> None:
        self.db = db
        self.settings = settings
        self._wake = asyncio.Event()
        self._smtp_ok: bool | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Send due mail for ever; wakes on ``wake()`` or every second. Failures (the database
        may be busy) are logged by their type only: SMTP errors can quote credentials."""
        await supervise("auth-mail", self.step, backoff=Backoff(1.0, 1.0), wake=self._wake, stop=stop,
                        describe=lambda exc: type(exc).__name__)  # fmt: skip

    async def step(self) -> float:
        while await self.send_due():
            pass
        return 1.0

    async def send_due(self, batch: int = 20) -> int:
        """Send what is due now; return how many rows were attempted."""
        async with self.db.session() as session:
            now = utcnow()
            stmt = (
                select(MailMessage.id)
                .where(col(MailMessage.sent_at).is_(None), col(MailMessage.next_attempt_at) <= now)
                .order_by(col(MailMessage.id))
                .limit(batch)
            )
            ids = list((await session.exec(stmt)).all())
        attempted = 0
        for mail_id in ids:
            row = await self._lease(mail_id)
            if row is not None:
                attempted += 1
                await self._deliver(row)
        await self._update_backlog()
        return attempted

    async def _lease(self, mail_id: int | None) -> MailMessage | None:
        async with self.db.session() as session:
            now = utcnow()
            result = await session.exec(
                update(MailMessage)
                .where(col(MailMessage.id) == mail_id, col(MailMessage.sent_at).is_(None))
                .where(col(MailMessage.next_attempt_at) <= now)
                .values(next_attempt_at=now + LEASE, attempts=MailMessage.attempts + 1)
            )
            await session.commit()
            if result.rowcount != 1:
                return None
            return await session.get(MailMessage, mail_id)

    async def _deliver(self, row: MailMessage) -> None:
        try:
            await self._smtp_send(row)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            MAIL_FAILED.inc()
            await self._retry_later(row, f"{type(exc).__name__}: {exc}"[:255])
            if self._smtp_ok is not False:
                log.warning("smtp_unavailable", host=self.settings.smtp_host, port=self.settings.smtp_port)
            self._smtp_ok = False
            return
        MAIL_SENT.inc()
        if self._smtp_ok is not True:
            log.info("smtp_available", host=self.settings.smtp_host, port=self.settings.smtp_port)
        self._smtp_ok = True
        async with self.db.session() as session:
            sent = await session.get(MailMessage, row.id)
            if sent is not None:
                # the bodies carry live single-use links: keep only the envelope once delivered
                sent.sent_at, sent.text_body, sent.html_body, sent.last_error = utcnow(), "", "", None
                session.add(sent)
                await session.commit()
        log.info("mail_sent", mail_id=row.id, attempts=row.attempts)

    async def _retry_later(self, row: MailMessage, error: str) -> None:
        async with self.db.session() as session:
            failed = await session.get(MailMessage, row.id)
            if failed is not None:
                failed.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(failed.attempts))
                failed.last_error = error
                session.add(failed)
                await session.commit()

    async def _smtp_send(self, row: MailMessage) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = row.to_addr
        message["Subject"] = row.subject
        message.set_content(row.text_body)
        message.add_alternative(row.html_body, subtype="html")
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )

    async def _update_backlog(self) -> None:
        async with self.db.session() as session:
            stmt = select(func.count()).select_from(MailMessage).where(col(MailMessage.sent_at).is_(None))
            MAIL_BACKLOG.set((await session.exec(stmt)).one())
