"""The fakes' push sender: delivers signed messages to a callback, with switches for tests.

A platform fake builds each message (its own headers and signature) and hands it here; one
few threads post them. Switches apply to the next ``count`` notifications: ``drop``,
``duplicate`` (sent twice with the same id), ``delay`` (sent ``seconds`` later), ``reorder`` (held
back and sent after the next one), ``bad_signature`` and ``old_timestamp`` (11 minutes old).
Verification requests (challenges) are never switched.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

SwitchMode = Literal["drop", "duplicate", "delay", "reorder", "bad_signature", "old_timestamp"]
OLD = timedelta(minutes=11)


@dataclass(frozen=True, slots=True)
class Signing:
    """How to sign one message: when it says it was sent, and whether to spoil the signature."""

    timestamp: datetime
    corrupt: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


Builder = Callable[[Signing], Delivery]
OnAnswer = Callable[[httpx.Response | None], None]


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: SwitchMode
    count: int = Field(default=1, ge=1)
    seconds: float = Field(default=2.0, ge=0, le=600)


@dataclass
class _Switch:
    mode: SwitchMode
    count: int
    seconds: float


@dataclass
class _Item:
    delivery: Delivery
    on_answer: OnAnswer | None = None
    copies: int = 1


@dataclass
class PushSender:
    """Posting threads per fake (the platforms deliver concurrently, in no promised order);
    ``notify`` and ``verify`` never block the fake's own request handling."""

    timeout: float = 5.0
    threads: int = 4
    _queue: queue.Queue[_Item | None] = field(default_factory=queue.Queue)
    _switches: list[_Switch] = field(default_factory=list)
    _held: _Item | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def switch(self, mode: SwitchMode, count: int = 1, seconds: float = 2.0) -> None:
        with self._lock:
            self._switches.append(_Switch(mode, count, seconds))

    def clear(self) -> None:
        with self._lock:
            self._switches.clear()
            self.outcomes.clear()
            self.sent_at.clear()

    def verify(self, build: Builder, on_answer: OnAnswer) -> None:
        """A verification request: never switched; ``on_answer`` sees the response."""
        self._put(_Item(build(Signing(datetime.now(UTC))), on_answer))

    def notify(self, build: Builder, key: str = "") -> None:
        """A notification, through the next switch; ``key`` names it in ``sent_at``."""
        switch = self._take_switch()
        mode = switch.mode if switch else None
        now = datetime.now(UTC)
        signing = Signing(now - OLD if mode == "old_timestamp" else now, mode == "bad_signature")
        item = _Item(build(signing), copies=2 if mode == "duplicate" else 1)
        if key:
            with self._lock:
                self.sent_at[key] = time.monotonic()
        if mode == "drop":
            self._count("dropped")
        elif mode == "delay":
            timer = threading.Timer(switch.seconds if switch else 0, self._put, [item])
            timer.daemon = True
            timer.start()
        elif mode == "reorder":
            with self._lock:
                self._held = item
        else:
            self._put(item)

    def _take_switch(self) -> _Switch | None:
        with self._lock:
            if not self._switches:
                return None
            switch = self._switches[0]
            switch.count -= 1
            if switch.count <= 0:
                self._switches.pop(0)
            return switch

    def _put(self, item: _Item) -> None:
        with self._lock:
            held, self._held = self._held, None
            if not self._workers:
                for n in range(self.threads):
                    worker = threading.Thread(target=self._run, daemon=True, name=f"fake-push-{n}")
                    worker.start()
                    self._workers.append(worker)
        self._queue.put(item)
        if held is not None:
            self._queue.put(held)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while (item := self._queue.get()) is not None:
                for _ in range(item.copies):
                    self._post(client, item)

    def _post(self, client: httpx.Client, item: _Item) -> None:
        delivery = item.delivery
        response: httpx.Response | None = None
        try:
            response = client.request(
                delivery.method, delivery.url, content=delivery.body, headers=delivery.headers
            )
            self._count(str(response.status_code))
        except httpx.HTTPError as exc:
            log.info("fake push to %s failed: %s", delivery.url, exc)
            self._count("error")
        if item.on_answer is not None:
            item.on_answer(response)

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for _ in workers:
            self._queue.put(None)
        for worker in workers:
            worker.join(timeout=5)


def rfc3339_nanos(moment: datetime) -> str:
    """Twitch's timestamps carry nanoseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
