"""YouTube's daily quota, planned (issue 15): pure functions over plain figures, clock passed in.

The day is Google's: midnight to midnight in America/Los_Angeles, so 23, 24 or 25 hours long
(PLATFORM_APIS.md §2.1). The **allowance** grows linearly through it, from a head start of
``HEAD_START`` of the quota at midnight to the whole quota at the next midnight: units left over
early stay for later, and the quota cannot run dry at noon.

``videos.list`` calls spend it in two kinds, in this order:

- **candidates** (a new feed entry, a pushed video, a scheduled stream coming due: a possible
  go-live) may spend up to the allowance;
- **re-confirmations** of videos already confirmed live may spend up to the allowance less a
  reserve (``candidate_share`` of it, at most ``RESERVE_HOURS`` of that share), so that a go-live
  finds units at any hour.

The **live re-confirmation interval** (the freshness of a live channel) is planned so that
re-confirming every live channel once per interval spends the units left for live videos evenly
until midnight::

    interval = time_left * round_cost / (remaining - candidate_need)
    round_cost = ceil(live / 50) + ROUND_OVERHEAD

where ``candidate_need`` is the larger of the reserve and what candidates spent per second so far
today, times the time left. It is rounded up to ``min_interval * 2^k``: the worker schedules live
channels on the epoch multiples of the interval, so every replica's live channels come due at the
same instants and their ids fill ``videos.list`` calls 50 at a time; the steps divide each other,
so a change of interval keeps the ticks aligned.

Candidates are packed the same way: one at a time each would cost a call, so a candidate that
does not fill a call waits for the next tick of ``min_interval`` (a go-live is seen up to that
much later) and is confirmed there with every replica's others. A pushed video (WebSub) is not
held: push is for speed, and it costs its own call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
IDS_PER_CALL = 50
# Of the quota, available at midnight: the first minutes of a day can confirm go-lives.
HEAD_START = 1 / 48
# Calls per round beyond ceil(live / 50): claims take due channels in order, so the live channels
# of one tick are one contiguous run, cut into 50s wherever offline channels due just before it
# end: at most one call more.
ROUND_OVERHEAD = 1
# The reserve for candidates holds at most this many hours of their share.
RESERVE_HOURS = 2
# The longest interval is min_interval * 2^MAX_DOUBLINGS (30 s → 64 min by default).
MAX_DOUBLINGS = 7


@dataclass(frozen=True, slots=True)
class QuotaDay:
    """One quota day: from one Pacific midnight to the next (UTC instants)."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, moment: datetime) -> QuotaDay:
        local = moment.astimezone(PACIFIC).date()
        start = datetime.combine(local, time(), tzinfo=PACIFIC)
        end = datetime.combine(local + timedelta(days=1), time(), tzinfo=PACIFIC)
        # Subtracting aware datetimes of one zone ignores DST; in UTC the length is the real one.
        return cls(start.astimezone(UTC), end.astimezone(UTC))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def elapsed(self, moment: datetime) -> float:
        return min(max((moment - self.start).total_seconds(), 0.0), self.seconds)

    def left(self, moment: datetime) -> float:
        return self.seconds - self.elapsed(moment)


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    daily_quota: int
    # The shortest live re-confirmation interval (LUMIO_POLL_LIVE_SECONDS).
    min_interval: timedelta = timedelta(seconds=30)
    # Of the quota, kept for candidates whatever live channels need.
    candidate_share: float = 0.2
    # Candidates wait for the next tick of min_interval and are confirmed together.
    pack_candidates: bool = True

    @property
    def max_interval(self) -> timedelta:
        return self.min_interval * (1 << MAX_DOUBLINGS)


@dataclass(frozen=True, slots=True)
class QuotaFigures:
    """Today's spending as every replica counted it, and the live channels to re-confirm."""

    used: int = 0
    live_used: int = 0
    live_channels: int = 0

    @property
    def candidate_used(self) -> int:
        return max(self.used - self.live_used, 0)


def allowance(policy: QuotaPolicy, moment: datetime) -> int:
    """Units the whole day may have spent by ``moment`` (candidates' limit)."""
    day = QuotaDay.of(moment)
    quota = policy.daily_quota
    head = quota * HEAD_START
    return min(quota, math.floor(head + (quota - head) * day.elapsed(moment) / day.seconds))


def reserve(policy: QuotaPolicy, moment: datetime) -> int:
    """Units of the allowance kept back from re-confirmations: the candidates' share of it, at
    most RESERVE_HOURS of that share (the interval's plan leaves them the rest; a larger
    reserve would only be left unspent at midnight)."""
    share = policy.daily_quota * policy.candidate_share
    return math.ceil(
        min(allowance(policy, moment) * policy.candidate_share, share * RESERVE_HOURS / 24)
    )


def live_allowance(policy: QuotaPolicy, moment: datetime) -> int:
    """Units the whole day may have spent by ``moment`` when the next call re-confirms."""
    return max(allowance(policy, moment) - reserve(policy, moment), 0)


def round_cost(live_channels: int) -> int:
    """Calls to re-confirm every live channel once."""
    if live_channels <= 0:
        return 0
    return math.ceil(live_channels / IDS_PER_CALL) + ROUND_OVERHEAD


def live_interval(policy: QuotaPolicy, figures: QuotaFigures, moment: datetime) -> timedelta:
    """The live re-confirmation interval that lasts the quota until midnight (see the module)."""
    cost = round_cost(figures.live_channels)
    if cost == 0:
        return policy.min_interval
    day = QuotaDay.of(moment)
    left = max(day.left(moment), 1.0)
    spare = policy.daily_quota - figures.used - candidate_need(policy, figures, moment)
    if spare <= 0:
        return policy.max_interval
    return quantised(policy, timedelta(seconds=left * cost / spare))


def candidate_need(policy: QuotaPolicy, figures: QuotaFigures, moment: datetime) -> float:
    """Units to keep for candidates until midnight: the reserve, or today's pace if higher."""
    day = QuotaDay.of(moment)
    elapsed = day.elapsed(moment)
    # An hour in, the day's own candidate pace says more than the first minutes did.
    pace = figures.candidate_used / elapsed if elapsed >= 3600 else 0.0
    share = policy.daily_quota * policy.candidate_share / day.seconds
    return max(share, pace) * day.left(moment)


def quantised(policy: QuotaPolicy, wanted: timedelta) -> timedelta:
    """The smallest min_interval * 2^k at least ``wanted``, at most the longest interval."""
    step = policy.min_interval
    while step < wanted and step < policy.max_interval:
        step *= 2
    return step


def next_tick(moment: datetime, interval: timedelta) -> datetime:
    """The first epoch multiple of ``interval`` after ``moment``: shared by every replica."""
    seconds = interval.total_seconds()
    ticks = math.floor(moment.timestamp() / seconds) + 1
    return datetime.fromtimestamp(ticks * seconds, UTC)


def supported_channels(
    policy: QuotaPolicy,
    interval: timedelta,
    live_share: float,
    candidates_per_day: float,
    pushed: bool = False,
) -> int:
    """How many channels the quota covers at ``interval`` (the README's table): each channel has
    ``candidates_per_day`` videos to confirm, held for the ticks of ``min_interval`` and
    confirmed there together; the rounds of its live share fit in what candidates leave."""
    ticks = 86_400 / policy.min_interval.total_seconds()
    rounds = 86_400 / interval.total_seconds()

    def fits(channels: int) -> bool:
        per_tick = channels * candidates_per_day / ticks
        # A tick with candidates costs a call, and one more per 50 of them.
        packed = ticks * (1 - math.exp(-per_tick)) + channels * candidates_per_day / IDS_PER_CALL
        if pushed:
            # A pushed video is confirmed at once, in a call of its own.
            packed = channels * candidates_per_day
        need = max(policy.daily_quota * policy.candidate_share, packed)
        live = round_cost(math.ceil(channels * live_share)) * rounds
        return need + live <= policy.daily_quota

    low, high = 0, 10_000_000
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low
