"""The YouTube quota plan as pure functions: the Pacific day (DST included), the allowance, the
reserve for candidates and the live re-confirmation interval. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lumio.detection.budget import quota_key
from lumio.detection.quota_plan import (
    QuotaDay,
    QuotaFigures,
    QuotaPolicy,
    allowance,
    live_allowance,
    live_interval,
    next_tick,
    round_cost,
    supported_channels,
)

POLICY = QuotaPolicy(10_000, timedelta(seconds=30))
# Midnight Pacific on an ordinary November day (PST, UTC-8).
MIDNIGHT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "hours"),
    [
        (datetime(2026, 11, 30, 20, 0, tzinfo=UTC), 24),
        # Clocks spring forward on 8 March 2026 and fall back on 1 November 2026.
        (datetime(2026, 3, 8, 20, 0, tzinfo=UTC), 23),
        (datetime(2026, 11, 1, 20, 0, tzinfo=UTC), 25),
        (datetime(2026, 7, 4, 20, 0, tzinfo=UTC), 24),
    ],
)
def test_the_quota_day_is_a_pacific_day_of_23_24_or_25_hours(moment: datetime, hours: int) -> None:
    day = QuotaDay.of(moment)
    assert day.seconds == hours * 3600
    assert day.start <= moment < day.end
    assert QuotaDay.of(day.end).start == day.end


def test_the_day_and_its_redis_key_turn_at_midnight_pacific() -> None:
    before, after = MIDNIGHT - timedelta(seconds=1), MIDNIGHT
    assert QuotaDay.of(before).end == MIDNIGHT == QuotaDay.of(after).start
    assert quota_key(before) == "lumio:quota:youtube:2026-11-29"
    assert quota_key(after) == "lumio:quota:youtube:2026-11-30"
    # In summer (PDT) midnight is 07:00 UTC.
    summer = datetime(2026, 7, 5, 7, 0, tzinfo=UTC)
    assert QuotaDay.of(summer).start == summer


def test_the_allowance_grows_linearly_from_a_head_start_to_the_quota() -> None:
    assert allowance(POLICY, MIDNIGHT) == 208
    assert allowance(POLICY, MIDNIGHT + timedelta(hours=12)) == 208 + 9_792 // 2
    assert allowance(POLICY, MIDNIGHT + timedelta(hours=24) - timedelta(seconds=1)) == 9_999
    # Midnight: a new day starts over at the head start.
    assert allowance(POLICY, MIDNIGHT + timedelta(hours=24)) == 208


def test_the_allowance_reaches_the_quota_at_the_end_of_a_dst_day() -> None:
    start = QuotaDay.of(datetime(2026, 11, 1, 20, 0, tzinfo=UTC)).start
    half = start + timedelta(hours=12.5)
    assert allowance(POLICY, half) == 208 + 9_792 // 2
    assert allowance(POLICY, start + timedelta(hours=25) - timedelta(seconds=1)) == 9_999


def test_re_confirmations_leave_the_candidates_their_share() -> None:
    noon = MIDNIGHT + timedelta(hours=12)
    # Two hours of the candidates' fifth: 167 units; at midnight a fifth of the head start.
    assert live_allowance(POLICY, noon) == allowance(POLICY, noon) - 167
    assert live_allowance(POLICY, MIDNIGHT) == 208 - 42


def test_a_round_costs_a_call_per_50_live_channels_plus_the_overhead() -> None:
    assert round_cost(0) == 0
    assert round_cost(1) == 2
    assert round_cost(50) == 2
    assert round_cost(51) == 3


def test_the_interval_lengthens_as_live_channels_and_spending_grow() -> None:
    noon = MIDNIGHT + timedelta(hours=12)
    few = live_interval(POLICY, QuotaFigures(4_000, 3_000, live_channels=10), noon)
    many = live_interval(POLICY, QuotaFigures(4_000, 3_000, live_channels=2_000), noon)
    spent = live_interval(POLICY, QuotaFigures(7_500, 6_500, live_channels=2_000), noon)
    assert few == timedelta(seconds=30)
    assert few < many < spent
    # Nothing left beyond the candidates' need: the longest interval, never "offline".
    broke = live_interval(POLICY, QuotaFigures(9_900, 8_900, live_channels=10), noon)
    assert broke == POLICY.max_interval == timedelta(seconds=3_840)


def test_the_interval_spends_what_is_left_evenly_until_midnight() -> None:
    noon = MIDNIGHT + timedelta(hours=12)
    figures = QuotaFigures(5_000, 4_000, live_channels=1_000)
    interval = live_interval(POLICY, figures, noon)
    rounds = 12 * 3600 / interval.total_seconds()
    live_units = rounds * round_cost(1_000)
    # Live rounds at this interval fit in what the candidates leave; at half of it they would not.
    assert live_units <= 5_000 - 1_000
    assert 2 * live_units > 5_000 - 1_000
    # One of the shared steps: 30 s doubled.
    assert interval.total_seconds() in {30 * 2**k for k in range(8)}


def test_a_fast_candidate_pace_takes_its_units_from_the_live_channels() -> None:
    evening = MIDNIGHT + timedelta(hours=18)
    calm = QuotaFigures(used=6_000, live_used=5_000, live_channels=1_500)
    busy = QuotaFigures(used=6_000, live_used=1_000, live_channels=1_500)
    assert live_interval(POLICY, busy, evening) > live_interval(POLICY, calm, evening)


def test_ticks_are_shared_epoch_multiples_that_nest() -> None:
    moment = datetime(2026, 11, 30, 12, 0, 7, tzinfo=UTC)
    tick = next_tick(moment, timedelta(seconds=120))
    assert tick == datetime(2026, 11, 30, 12, 2, tzinfo=UTC)
    assert next_tick(moment, timedelta(seconds=60)) == datetime(2026, 11, 30, 12, 1, tzinfo=UTC)
    # A tick of the longer interval is a tick of the shorter one.
    assert tick.timestamp() % 60 == 0
    assert next_tick(tick, timedelta(seconds=120)) == tick + timedelta(seconds=120)


def test_supported_channels_follow_the_formula() -> None:
    two_minutes = supported_channels(POLICY, timedelta(seconds=120), 0.05, 1.0)
    eight_minutes = supported_channels(POLICY, timedelta(seconds=480), 0.05, 1.0)
    assert 0 < two_minutes < eight_minutes
    live = round_cost(-(-two_minutes * 5 // 100)) * 720
    # At most a call per 30-s tick for candidates, and one per 50 of them.
    assert 2_880 + two_minutes / 50 + live <= 10_000
