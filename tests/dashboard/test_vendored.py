"""The vendored charting library is exactly the published npm package's files, with its license."""

from __future__ import annotations

import hashlib
from importlib import resources

# uplot@1.6.32 from the npm registry (dist.integrity sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6
# IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==), files from its dist/ folder.
VENDORED = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
}


def test_uplot_is_the_published_build_with_its_license() -> None:
    static = resources.files("lumio.dashboard") / "static"
    for name, digest in VENDORED.items():
        assert hashlib.sha256((static / name).read_bytes()).hexdigest() == digest, name
    license_text = (static / "uPlot.LICENSE").read_text()
    assert "The MIT License" in license_text and "Leon Sorokin" in license_text
