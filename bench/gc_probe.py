"""Run ``lumio`` with every garbage-collector pass over 2 ms logged to stderr (the bench's API log).

    python -m bench.gc_probe api --host ... --port ...

Each line: ``gc-pause gen=G ms=M at=T`` with T on CLOCK_MONOTONIC (shared by all processes on
Linux), so that a benchmark can tell which pauses fell into its measured windows.

Experiment (``BENCH_GC_FREEZE_AFTER_FULL=1``, not in the product): right after every full pass,
when no cyclic garbage is left, move every surviving object to the permanent generation
(``gc.freeze()``), so that the next full pass walks only what was allocated since. Objects frozen
that later die in a cycle are never collected (a leak with stream churn); see bench/README.md.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

THRESHOLD_MS = 2.0
_started = [0.0]
FREEZE_AFTER_FULL = os.environ.get("BENCH_GC_FREEZE_AFTER_FULL") == "1"


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    now = time.monotonic()
    if phase == "start":
        _started[0] = now
        return
    pause_ms = (now - _started[0]) * 1000
    if FREEZE_AFTER_FULL and info["generation"] == 2:
        gc.freeze()
    if pause_ms > THRESHOLD_MS:
        generation = info["generation"]
        print(f"gc-pause gen={generation} ms={pause_ms:.1f} at={now:.3f}", file=sys.stderr)


def main() -> None:
    gc.callbacks.append(_on_gc)
    if threshold := os.environ.get("BENCH_GC_THRESHOLD"):
        gc.set_threshold(*(int(n) for n in threshold.split(",")))
    from lumio.cli import main as lumio_main

    sys.argv[0] = "lumio"
    lumio_main()


if __name__ == "__main__":
    main()
