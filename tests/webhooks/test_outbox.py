"""The outbox keeps facts and builds the bodies at dispatch: the same bodies as built at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import orjson
import pytest

from lumio.events.schemas import Reason, StatusEvent
from lumio.platforms.base import LiveStream
from lumio.webhooks import outbox
from lumio.webhooks.schemas import StreamContext

NOW = datetime(2026, 12, 2, 10, 30, 15, 123456, tzinfo=UTC)
STREAM = LiveStream("Speedrun — any% ✨", "Retro", 1234, NOW - timedelta(hours=2, minutes=13), "s1")
CASES = [
    (StatusEvent(uuid4(), Reason.WENT_ONLINE, NOW, "kick", True, uuid4()), StreamContext("42", "nova", STREAM), None),
    (StatusEvent(uuid4(), Reason.WENT_OFFLINE, NOW, "twitch", False, uuid4(), 7980), StreamContext("7", "", STREAM), None),
    (StatusEvent(uuid4(), Reason.STREAM_UPDATED, NOW, "youtube", True), StreamContext("UCx", "N", LiveStream(None, None, None, None, "v")), None),
    (StatusEvent(uuid4(), Reason.WENT_OFFLINE, NOW, "trovo", False), StreamContext("9", "t", None), None),
    (StatusEvent(uuid4(), Reason.MANUAL_STARTED, NOW), None, None),
    (StatusEvent(uuid4(), Reason.NOW_PLAYING_CHANGED, NOW), None, {"track": {"name": "Song", "ms": 3}}),
]  # fmt: skip


@pytest.mark.parametrize(("event", "context", "extra"), CASES)
def test_facts_give_the_bodies_built_at_once(
    event: StatusEvent, context: StreamContext | None, extra: dict[str, object] | None
) -> None:
    contexts = {} if context is None else {(event.account_id, event.platform or ""): context}
    extras = {} if extra is None else {event.account_id: extra}
    facts = outbox.encode_facts([event], contexts, extras)
    [notice] = outbox.decode_facts(facts)
    assert notice == outbox.status_notice(event, context, extra)
    assert orjson.loads(notice.body)["type"] == event.reason.value


def test_facts_keep_the_order_of_the_transaction() -> None:
    events = [StatusEvent(uuid4(), Reason.WENT_ONLINE, NOW, "kick", True) for _ in range(50)]
    notices = outbox.decode_facts(outbox.encode_facts(events))
    assert [n.account_id for n in notices] == [e.account_id for e in events]
