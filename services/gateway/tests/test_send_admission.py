"""The gateway's send admission: the limit follows the queueing in answer latency (as TCP Vegas)."""

from __future__ import annotations

import pytest

from chainchat_gateway import ws
from chainchat_gateway.ws import SendAdmission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(ws.time, "monotonic", clock)
    return clock


def _answer(
    admission: SendAdmission, clock: Clock, latency_s: float, seconds: float, rate: float = 200
) -> None:
    """Admit and answer ``rate`` sends per second for ``seconds``, each ``latency_s`` after admission."""
    for _ in range(int(rate * seconds)):
        clock.now += 1 / rate
        assert admission.admit()
        admission.answered(latency_s)


def test_starts_at_the_ceiling_and_refuses_beyond_it(clock: Clock) -> None:
    admission = SendAdmission(floor=4, ceiling=10, target_wait_s=0.1)
    assert [admission.admit() for _ in range(11)] == [True] * 10 + [False]
    admission.dropped(10)
    assert admission.outstanding == 0


def test_queueing_beyond_the_target_shrinks_the_limit_and_its_end_grows_it_back(clock: Clock) -> None:
    admission = SendAdmission(floor=4, ceiling=128, target_wait_s=0.1)
    _answer(admission, clock, latency_s=0.01, seconds=2)  # unloaded: 10 ms
    assert admission.limit == 128
    _answer(admission, clock, latency_s=0.5, seconds=1)  # 490 ms queued: halved per window
    assert admission.limit <= 64
    _answer(admission, clock, latency_s=0.5, seconds=3)
    assert admission.limit == 4  # never below the floor
    _answer(admission, clock, latency_s=0.01, seconds=3)  # the burst is over
    assert admission.limit == 128  # back at the ceiling within a few windows


def test_queueing_near_the_target_holds_the_limit(clock: Clock) -> None:
    admission = SendAdmission(floor=4, ceiling=128, target_wait_s=0.1)
    _answer(admission, clock, latency_s=0.01, seconds=1)
    _answer(admission, clock, latency_s=0.4, seconds=1)
    _answer(admission, clock, latency_s=0.11, seconds=1)  # base 10 ms + 100 ms of queueing
    held = admission.limit
    assert held < 128
    _answer(admission, clock, latency_s=0.11, seconds=3)
    assert admission.limit == held


def test_a_slow_machine_without_queueing_keeps_the_full_limit(clock: Clock) -> None:
    """Every answer takes 300 ms (more than the 100 ms target) because everything is slow, not
    because sends queue: the limit must not collapse (the answer-rate rule did)."""
    admission = SendAdmission(floor=4, ceiling=128, target_wait_s=0.1)
    _answer(admission, clock, latency_s=0.3, seconds=10, rate=50)
    assert admission.limit == 128
