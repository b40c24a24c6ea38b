"""The aggregator's publish pacing: on the beat nothing waits, one extra publish delays nothing
after it, and a flood of changes is held to 1.25 publishes per period."""

from __future__ import annotations

import itertools

import pytest

from actors.publish_pacer import PublishPacer

PERIOD = 0.25


def test_batches_on_the_beat_never_wait_even_after_one_off_the_beat() -> None:
    pacer = PublishPacer(PERIOD)
    pacer.take(0.0)
    pacer.take(0.008)  # the start-up figures, then the first batch right behind them
    for beat in range(1, 40):
        now = 0.008 + beat * PERIOD
        assert pacer.wait_s(now) == 0.0
        pacer.take(now)


def test_a_flood_is_held_to_one_and_a_quarter_publishes_a_period() -> None:
    pacer = PublishPacer(PERIOD)
    now, published = 0.0, []
    while now < 10.0:  # a change every millisecond: publish whenever allowed
        wait = pacer.wait_s(now)
        now += wait
        pacer.take(now)
        published.append(now)
        now += 0.001
    assert len(published) <= 2 + 1.25 * 10.0 / PERIOD
    assert len(published) >= 1.25 * 10.0 / PERIOD - 1
    gaps = [b - a for a, b in itertools.pairwise(published)]
    assert all(gap >= PERIOD / 1.25 - 1e-9 for gap in gaps[2:])  # only the first two go back to back


def test_a_late_gateway_works_off_its_delay() -> None:
    """Batches due every period but arriving late: each publish goes at once, the beat is kept."""
    pacer = PublishPacer(PERIOD)
    for beat in range(40):
        now = beat * PERIOD + (0.2 if beat == 5 else 0.0)
        assert pacer.wait_s(now) == 0.0
        pacer.take(now)


def test_a_period_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="period_s"):
        PublishPacer(0.0)
