"""/docs serves only the vendored Swagger UI files whose hashes are pinned."""

from __future__ import annotations

from pathlib import Path

import pytest

from lumio.api import docs


def test_the_vendored_files_match_their_pins() -> None:
    assert set(docs.assets()) == {"swagger-ui.css", "swagger-ui-bundle.js", "init.js"}


def test_a_changed_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = (docs.VENDORED / "swagger-ui.css").read_bytes()
    (tmp_path / "swagger-ui.css").write_bytes(original + b"body{}")
    monkeypatch.setattr(docs, "VENDORED", tmp_path)
    with pytest.raises(RuntimeError, match="pinned hash"):
        docs._vendored("swagger-ui.css")
