"""The gateway's send admission: the limit follows the rate sends are answered at (Little's law)."""

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


def _answer_at(admission: SendAdmission, clock: Clock, rate: float, seconds: float) -> None:
    """Admit and answer sends at ``rate`` per second for ``seconds``."""
    for _ in range(int(rate * seconds)):
        clock.now += 1 / rate
        assert admission.admit()
        admission.answered()


def test_starts_at_the_ceiling_and_refuses_beyond_it(clock: Clock) -> None:
    admission = SendAdmission(floor=4, ceiling=10, target_wait_s=0.1)
    assert [admission.admit() for _ in range(11)] == [True] * 10 + [False]
    admission.dropped(10)
    assert admission.outstanding == 0


def test_limit_shrinks_to_what_is_answered_in_the_target_wait_and_grows_back(clock: Clock) -> None:
    admission = SendAdmission(floor=4, ceiling=128, target_wait_s=0.1)
    _answer_at(admission, clock, rate=100, seconds=5)  # saturated services: 100 answers/s
    assert 9 <= admission.limit <= 12  # about 100/s × 0.1 s
    _answer_at(admission, clock, rate=5, seconds=5)
    assert admission.limit == 4  # never below the floor
    _answer_at(admission, clock, rate=2000, seconds=2)
    assert admission.limit == 128  # never above the ceiling
