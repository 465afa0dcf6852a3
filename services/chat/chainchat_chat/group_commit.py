"""Group commit: every send that arrives while a transaction is in flight goes into the next one.

One transaction (one commit, one WAL write on SQLite) for a whole batch instead of one per message:
at low load a batch is one send and nothing waits; under load the batch grows by itself to what
arrived during the previous commit. No timer, so no latency is added to make batches.

Inside the transaction, in a fixed number of statements whatever the batch holds: lock every
conversation row of the batch in id order (so two PostgreSQL writers never deadlock), read their
members, assign each conversation's accepted sends consecutive seqs in arrival order, then move
every ``last_seq`` in one ``executemany``. A send whose member list no
longer matches what its recipients were checked against is refused with ``MembersChanged`` (the
caller checks again); a ``client_id`` already stored (a retry) answers with the first result. Any
integrity error (another instance stored the same ``client_id`` at the same moment) sends every
send of the batch down the one-at-a-time path, which resolves it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Histogram
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from chainchat_chat import store
from chainchat_chat.service import conversation_not_found, new_id
from chainchat_protocol.chat import ChatErrorCode, PostMessageRequest, SendResult
from chainchat_protocol.errors import Unavailable
from chainchat_service.db import Database, storage_full, storage_full_error, utcnow
from chainchat_service.logging import get_logger

log = get_logger(__name__)

BATCH_SIZE = Histogram(
    "chainchat_chat_commit_batch_size",
    "Sends stored per transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


class MembersChanged(Exception):
    """Membership changed between the recipient check and the insert: check again."""


@dataclass
class Pending:
    """One send waiting for its transaction; ``members`` is what its recipients were checked against."""

    req: PostMessageRequest
    text: str
    digest: str
    members: list[str]
    done: asyncio.Future[tuple[SendResult, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def key(self) -> tuple[str, str, str] | None:
        r = self.req
        return None if r.client_id is None else (r.conversation_id, r.user_id, r.client_id)


@dataclass(eq=False)
class GroupCommit:
    """Stores sends in batches; ``store(pending)`` returns ``(result, new)``."""

    db: Database
    # tells the send path's member cache what the transaction saw
    on_members: Callable[[str, list[str]], None] = field(default=lambda cid, members: None, kw_only=True)
    max_batch: int = field(default=256, kw_only=True)
    max_attempts: int = field(default=10, kw_only=True)
    _queue: list[Pending] = field(default_factory=list, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False)

    async def store(self, pending: Pending) -> tuple[SendResult, bool]:
        self._queue.append(pending)
        self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._run(), name="chat-group-commit")
        return await pending.done

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._commit(batch)

    async def _commit(self, batch: list[Pending]) -> None:
        """Store one batch and settle every future in it (a result or the error to raise)."""
        error: BaseException | None = None
        for attempt in range(self.max_attempts):
            try:
                outcomes, seen = await self.db.write_transaction(functools.partial(_write, batch))
                for cid, members in seen.items():
                    self.on_members(cid, members)
                BATCH_SIZE.observe(len(batch))
                for pending, outcome in zip(batch, outcomes, strict=True):
                    _settle(pending, outcome)
                return
            except IntegrityError:
                error = BatchConflict()
                break
            except OperationalError as exc:  # SQLite busy, PostgreSQL deadlock or serialization
                if storage_full(exc):  # no retry frees a full disk
                    error = storage_full_error()
                    break
                error_name = type(exc.orig).__name__
                log.info("message_store_retry", attempt=attempt, batch=len(batch), error=error_name)
            except Exception as exc:  # noqa: BLE001 - each sender gets the error, the loop lives on
                error = exc
                break
            await asyncio.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.5)))
        else:
            error = Unavailable("the conversation is too busy; retry", code=ChatErrorCode.STORAGE_BUSY)
        for pending in batch:
            _settle(pending, error)


def _write(batch: Sequence[Pending], conn: Connection) -> tuple[list[object], dict[str, list[str]]]:
    """The batch's statements on ``conn`` (synchronous: run whole on SQLite's worker thread);
    each send's outcome, and the members each conversation has now (for the send path's cache)."""
    now = utcnow()
    outcomes: list[object] = [None] * len(batch)
    by_conversation: dict[str, list[int]] = {}
    for i, pending in enumerate(batch):
        by_conversation.setdefault(pending.req.conversation_id, []).append(i)
    last_seqs = store.lock_conversations(conn, list(by_conversation))  # one lock order
    for cid, indexes in by_conversation.items():
        if cid not in last_seqs:
            for i in indexes:
                outcomes[i] = conversation_not_found()
    # read under the locks: no other writer changes these members or stores these client_ids now
    earlier = store.by_client_ids(conn, [k for p in batch if (k := p.key()) is not None])
    members = store.members_of(conn, list(last_seqs))
    rows: list[store.NewMessage] = []
    advanced: dict[str, int] = {}
    for cid, last_seq in last_seqs.items():
        first: dict[tuple[str, str, str], _Row] = {}
        seq = last_seq
        for i in by_conversation[cid]:
            pending, key = batch[i], batch[i].key()
            if key is not None and key in earlier:
                outcomes[i] = (earlier[key], False)
            elif key is not None and key in first:
                outcomes[i] = _Same(first[key].index)  # sent twice in one batch: one message
            elif pending.members != members[cid]:
                outcomes[i] = MembersChanged()
            else:
                seq += 1
                rows.append(store.NewMessage(pending.req, new_id(), seq, pending.text, pending.digest))
                outcomes[i] = row = _Row(len(rows) - 1)
                if key is not None:
                    first[key] = row
        if seq != last_seq:
            advanced[cid] = seq
    store.advance_seqs(conn, advanced, now)
    results = store.insert_messages(conn, rows, now)
    return [_resolve(o, results) for o in outcomes], members


@dataclass(frozen=True, slots=True)
class _Row:
    index: int  # into the rows inserted by the batch


@dataclass(frozen=True, slots=True)
class _Same:
    index: int  # the row of the identical send earlier in the batch


class BatchConflict(Exception):
    """The batch hit a unique constraint: the caller stores its send alone."""


def _resolve(outcome: object, results: list[SendResult]) -> object:
    if isinstance(outcome, _Row):
        return (results[outcome.index], True)
    if isinstance(outcome, _Same):
        return (results[outcome.index], False)
    return outcome


def _settle(pending: Pending, outcome: object) -> None:
    if pending.done.done():
        return
    if isinstance(outcome, BaseException):
        pending.done.set_exception(outcome)
    else:
        pending.done.set_result(outcome)  # type: ignore[arg-type]
