"""The credential cache (issue 15): jittered lives never past the ttl, one background refresh
claim per entry late in its life, and nothing read before a revocation stored after it."""

from __future__ import annotations

import time
import uuid

import pytest

from lumio.kit.auth_cache import AuthCache
from lumio.kit.principal import Credential, Principal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def principal(token: bytes = b"k1") -> Principal:
    return Principal(
        uuid.uuid4(), uuid.uuid4(), frozenset(), Credential.API_KEY, uuid.uuid4(), token
    )


@pytest.mark.parametrize(("jitter", "life"), [(0.0, 8.0), (0.5, 9.0), (0.999, 9.99)])
def test_an_entry_lives_a_random_share_of_the_ttl_never_more(
    clock: Clock, jitter: float, life: float
) -> None:
    cache = AuthCache(10, jitter=lambda: jitter)
    cache.put(principal())
    clock.now += life - 0.01
    assert cache.get(b"k1") is not None
    clock.now += 0.02
    assert cache.get(b"k1") is None


def test_a_refresh_is_claimed_once_in_the_last_quarter_of_the_life(clock: Clock) -> None:
    cache = AuthCache(10, jitter=lambda: 1.0)
    cache.put(principal())
    clock.now += 7.4
    assert not cache.claim_refresh(b"k1")
    clock.now += 0.2
    assert cache.claim_refresh(b"k1")
    assert not cache.claim_refresh(b"k1")  # already queued
    claimed = cache.take_claimed()
    assert claimed == {b"k1": Credential.API_KEY}
    assert not cache.claim_refresh(b"k1")  # in flight
    cache.refreshed(claimed)
    assert cache.claim_refresh(b"k1")


def test_a_principal_read_before_an_invalidation_is_not_stored(clock: Clock) -> None:
    cache = AuthCache(10)
    epoch = cache.epoch
    cache.invalidate(b"other")
    cache.put(principal(), since=epoch)
    assert cache.get(b"k1") is None
    cache.put(principal(), since=cache.epoch)
    assert cache.get(b"k1") is not None


def test_a_zero_ttl_caches_nothing(clock: Clock) -> None:
    cache = AuthCache(0)
    cache.put(principal())
    assert cache.get(b"k1") is None
