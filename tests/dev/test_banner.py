"""`lumio dev` tells a new user where the dashboard is before anything else."""

from __future__ import annotations

import uuid

import pytest

from lumio.dev.run import DEMO_EMAIL, DEMO_PASSWORD, Demo, _banner
from lumio.kit.settings import Settings


def test_the_first_line_is_the_dashboard_address(capsys: pytest.CaptureFixture[str]) -> None:
    demo = Demo(uuid.uuid4(), uuid.uuid4(), "lumio_demo_key")
    _banner(Settings(), "127.0.0.1", 8000, demo, None, [], 20.0)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"Dashboard: http://127.0.0.1:8000/ — sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}"
    assert first == (
        "Dashboard: http://127.0.0.1:8000/ — sign in as demo@lumio.local / demo-password"
    )
