"""Serve one fake platform, seeded with many channels, for ``bench/worker_bench.py``.

    .venv/bin/python -m bench.fakes_server --platform kick --port 8701 --channels 25000

A process of its own per platform, so that the fakes do not share the worker's CPU (nor each
other's). The channels are seeded in Python before the server starts listening; their ids follow
``channel_id(platform, n)`` for ``n`` in ``0 .. channels - 1``, so that the benchmark can link
the same ids in PostgreSQL with one set-based INSERT. Every ``--live-every``-th channel is live.
Request statistics are read over each fake's own ``/_control/`` interface.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import uvicorn
from starlette.applications import Starlette

from lumio.dev.fakes import kick, trovo, twitch, youtube
from lumio.dev.fakes import state as state_module
from lumio.platforms.base import Platform

# Where each platform's bench ids start; YouTube's are "UC" + 22 characters like real ones.
FIRST_ID = {Platform.TWITCH: 200_000_000, Platform.KICK: 3_000_000, Platform.TROVO: 400_000_000}
# Far more than a real project has (10,000 units a day): the benchmark counts requests, and a
# spent quota would only turn them into 403s.
YOUTUBE_QUOTA = 1_000_000_000
UPLOADS_PER_CHANNEL = 2


def channel_id(platform: Platform, n: int) -> str:
    if platform is Platform.YOUTUBE:
        return f"UCbench{n:017d}"
    return str(FIRST_ID[platform] + n)


def is_live(n: int, live_every: int) -> bool:
    return live_every > 0 and n % live_every == 0


def _bulk_add(
    state: state_module.FakePlatformState, platform: Platform, count: int, every: int
) -> None:
    """Kick and Trovo channels straight into the state's table.

    ``FakePlatformState.add`` checks the name against every channel (a linear scan), which makes
    25,000 adds quadratic; the bench's names are unique by construction.
    """
    now = state.clock()
    with state._lock:
        for n in range(count):
            cid = channel_id(platform, n)
            state._channels[cid] = state_module.FakeChannel(
                channel_id=cid,
                name=f"bench{n}",
                display_name=f"Bench {n}",
                created_at=now,
                title=f"Bench stream {n}",
                category="Just Chatting",
                category_id=15,
            )
    for n in range(0, count, every or count + 1):
        state.update(
            channel_id(platform, n), state_module.ChannelPatch(live=True, viewers=10 + n % 500)
        )


def seed_app(platform: Platform, count: int, live_every: int) -> Starlette:
    if platform is Platform.TWITCH:
        twitch_state = twitch.FakeTwitchState()
        for n in range(count):
            twitch_state.add_channel(
                f"bench{n}",
                channel_id=channel_id(platform, n),
                live=is_live(n, live_every),
                title=f"Bench stream {n}",
                category="Just Chatting",
                viewers=10 + n % 500,
            )
        return twitch.create_app(twitch_state)
    if platform is Platform.YOUTUBE:
        youtube_state = youtube.FakeYouTubeState(quota_per_day=YOUTUBE_QUOTA)
        # Old uploads in every feed: the adapter must tell them from live videos without quota.
        old = datetime.now(UTC) - timedelta(days=10)
        for n in range(count):
            cid = channel_id(platform, n)
            youtube_state.add_channel(cid, handle=f"bench{n}", title=f"Bench {n}")
            for k in range(UPLOADS_PER_CHANNEL):
                youtube_state.upload(cid, f"Upload {k}", old + timedelta(hours=k))
            if is_live(n, live_every):
                youtube_state.go_live(cid, f"Bench stream {n}", viewers=10 + n % 500)
        return youtube.create_app(youtube_state)
    if platform is Platform.KICK:
        kick_state = kick.FakeKickState()
        _bulk_add(kick_state, platform, count, live_every)
        return kick.create_app(kick_state)
    trovo_state = trovo.FakeTrovoState()
    _bulk_add(trovo_state, platform, count, live_every)
    return trovo.create_app(trovo_state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", type=Platform, choices=list(Platform), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--channels", type=int, default=25_000)
    parser.add_argument("--live-every", type=int, default=100, help="0: none live")
    args = parser.parse_args()
    started = time.monotonic()
    app = seed_app(args.platform, args.channels, args.live_every)
    print(
        f"fake {args.platform.value}: {args.channels} channels seeded in "
        f"{time.monotonic() - started:.1f} s, serving on 127.0.0.1:{args.port}",
        flush=True,
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        # Connections from a worker with a 100-connection pool: keep them open between polls.
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
