"""Background loops of every service: one supervisor with capped exponential back-off.

A loop is a *step* run for ever: ``await step()`` does one round of work and returns how long to
rest before the next one (``None`` or 0: go on at once). A step that raises is retried after a
back-off that doubles up to ``Backoff.maximum`` and starts again from ``Backoff.initial`` after the
next success. A failure streak is logged once when it starts and once when it ends (not once per
retry), and every failure is counted in ``chainchat_loop_failures_total{loop}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter

from chainchat_service.logging import get_logger

log = get_logger(__name__)

LOOP_FAILURES = Counter("chainchat_loop_failures_total", "Failed rounds of a background loop", ["loop"])

Step = Callable[[], Awaitable[float | None]]
#: Told of each failure; may return the least back-off this failure deserves (None: the usual).
OnError = Callable[[Exception], float | None]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits after failures: ``initial``, then times ``factor`` per failure, never above ``maximum``."""

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0

    def next(self, delay: float) -> float:
        return min(delay * self.factor, self.maximum)


def _describe(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__)[:200]


async def supervise(
    name: str,
    step: Step,
    *,
    backoff: Backoff = Backoff(),
    wake: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    on_error: OnError | None = None,
    describe: Callable[[Exception], str] | None = None,
) -> None:
    """Run ``step`` until ``stop`` is set (or the task is cancelled).

    ``wake`` (optional) cuts any rest or back-off short: it is cleared before each step, so a wake
    that arrives during a step runs the next one at once. ``describe`` turns an error into the text
    logged (pass ``lambda e: type(e).__name__`` where a message may carry a secret).
    """
    describe = describe or _describe
    delay = backoff.initial
    failures = 0
    while stop is None or not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            rest = await step()
        except Exception as exc:  # noqa: BLE001 - the loop outlives any failure of one round
            LOOP_FAILURES.labels(name).inc()
            least = on_error(exc) if on_error is not None else None
            rest = max(delay, least or 0.0)
            if failures == 0:
                log.warning("loop_failing", loop=name, error=describe(exc), retry_in=rest)
            failures += 1
            delay = backoff.next(rest)
        else:
            if failures:
                log.info("loop_recovered", loop=name, failures=failures)
            failures, delay = 0, backoff.initial
        await rest_for(rest or 0.0, wake, stop)


async def rest_for(seconds: float, *events: asyncio.Event | None) -> None:
    """Sleep ``seconds``, or less when one of ``events`` is set first."""
    waiting = [e for e in events if e is not None]
    if seconds <= 0 or any(e.is_set() for e in waiting):
        await asyncio.sleep(0)  # still give the others a turn
        return
    if not waiting:
        await asyncio.sleep(seconds)
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in waiting]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
