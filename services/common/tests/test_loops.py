"""The loop supervisor: capped exponential back-off, one log line per failure streak, clean stop."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from chainchat_service import loops
from chainchat_service.loops import Backoff, supervise
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.settings import ServiceSettings


class Script:
    """A step that fails ``failures`` times, then succeeds; records each rest it was given."""

    def __init__(self, failures: int, *, then_rest: float = 0.0) -> None:
        self.failures = failures
        self.then_rest = then_rest
        self.calls = 0

    async def __call__(self) -> float:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"down {self.calls}")
        return self.then_rest


@pytest.fixture
def rests(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every rest the supervisor asks for, without sleeping it."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_rest(seconds: float, *_: asyncio.Event | None) -> None:
        asked.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(loops, "rest_for", fake_rest)
    return asked


async def _run_until(stop: asyncio.Event, condition: object, task: asyncio.Task[None]) -> None:
    for _ in range(1000):
        if callable(condition) and condition():
            break
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_back_off_doubles_up_to_the_cap_then_resets_after_a_success(rests: list[float]) -> None:
    step, stop = Script(failures=6, then_rest=7.0), asyncio.Event()
    task = asyncio.create_task(supervise("t", step, backoff=Backoff(0.5, 4.0), stop=stop))
    await _run_until(stop, lambda: step.calls >= 8, task)
    assert rests[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # capped at the maximum
    assert rests[6] == 7.0  # a success rests what the step asked for


async def test_a_failure_after_a_recovery_starts_again_from_the_initial_delay(rests: list[float]) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls in (1, 2, 3, 5):
            raise RuntimeError("flaky")

    stop = asyncio.Event()
    task = asyncio.create_task(supervise("t", flaky, backoff=Backoff(1.0, 30.0), stop=stop))
    await _run_until(stop, lambda: calls >= 6, task)
    assert rests[:5] == [1.0, 2.0, 4.0, 0.0, 1.0]


async def test_one_warning_per_failure_streak_and_one_line_when_it_recovers(rests: list[float]) -> None:
    step, stop = Script(failures=5), asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(supervise("the-loop", step, stop=stop))
        await _run_until(stop, lambda: step.calls >= 7, task)
    failing = [e for e in logs if e["event"] == "loop_failing"]
    recovered = [e for e in logs if e["event"] == "loop_recovered"]
    assert len(failing) == 1
    assert failing[0]["loop"] == "the-loop"
    assert failing[0]["error"] == "down 1"
    assert [e["failures"] for e in recovered] == [5]


async def test_on_error_sees_each_failure_and_may_ask_for_a_longer_back_off(rests: list[float]) -> None:
    seen: list[str] = []

    def on_error(exc: Exception) -> float | None:
        seen.append(str(exc))
        return 3.0 if str(exc) == "down 2" else None

    step, stop = Script(failures=3), asyncio.Event()
    task = asyncio.create_task(supervise("t", step, backoff=Backoff(0.5, 10.0), stop=stop, on_error=on_error))
    await _run_until(stop, lambda: step.calls >= 4, task)
    assert seen == ["down 1", "down 2", "down 3"]
    assert rests[:3] == [0.5, 3.0, 6.0]


async def test_describe_keeps_the_message_out_of_the_log(rests: list[float]) -> None:
    async def leaky() -> None:
        raise RuntimeError("password=hunter2")

    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(supervise("t", leaky, stop=stop, describe=lambda e: type(e).__name__))
        await _run_until(stop, lambda: len(rests) >= 2, task)
    assert "hunter2" not in repr(logs)


async def test_wake_cuts_a_rest_short() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    rounds = 0

    async def step() -> float:
        nonlocal rounds
        rounds += 1
        return 60.0

    task = asyncio.create_task(supervise("t", step, wake=wake, stop=stop))
    await asyncio.sleep(0.05)
    assert rounds == 1
    wake.set()
    await asyncio.sleep(0.05)
    assert rounds == 2
    stop.set()
    wake.set()
    await asyncio.wait_for(task, 2)


async def test_the_runtime_stops_its_supervised_loops_at_shutdown() -> None:
    runtime = ServiceRuntime(ServiceSettings(service_name="t", _env_file=None))  # type: ignore[call-arg]
    rounds = 0

    async def step() -> float:
        nonlocal rounds
        rounds += 1
        return 3600.0  # resting for an hour: stop must not wait for it

    runtime.supervise("t-loop", step)
    await asyncio.sleep(0.05)
    task = runtime.background[-1]
    await asyncio.wait_for(runtime.stop(), 2)
    assert task.done()
    assert rounds == 1


async def test_a_stop_ends_the_loop_between_steps_without_cancelling() -> None:
    stop = asyncio.Event()
    finished: list[int] = []

    async def step() -> float:
        await asyncio.sleep(0.01)
        finished.append(1)
        stop.set()
        return 3600.0

    await asyncio.wait_for(supervise("t", step, stop=stop), 2)
    assert finished == [1]
