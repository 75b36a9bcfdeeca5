#!/usr/bin/env python3
"""The project's two entry points, needing only Python 3.11+ on the machine.

    python3 run.py dev    run the system on embedded PostgreSQL and Redis
    python3 run.py test   run the whole test suite (ruff, mypy --strict, import contracts, pytest)

It installs the locked dependencies into .venv with uv (itself installed from PyPI into .tools/
when the machine has none), then runs the command. Extra arguments go to `lumio dev` or pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.8"


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    tools = ROOT / ".tools"
    binary = tools / "bin" / "uv"
    if not binary.exists():
        venv.create(tools, with_pip=True)
        pip = [str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"uv=={UV_VERSION}"], check=True)
    return str(binary)


def sync() -> Path:
    """Install exactly the locked dependencies (a no-op when they are in place)."""
    subprocess.run([uv(), "sync", "--frozen", "--quiet"], cwd=ROOT, check=True)
    return ROOT / ".venv" / "bin"


def run(*command: str) -> int:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def ensure_browser() -> None:
    """The dashboard tests drive Debian's Chromium (Playwright cannot download a browser here)."""
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    else:
        print("note: install Chromium (e.g. apt-get install chromium) for the dashboard tests")


def test(bin_dir: Path, args: list[str]) -> int:
    ensure_browser()
    for step in (
        [str(bin_dir / "ruff"), "check", "."],
        [str(bin_dir / "ruff"), "format", "--check", "."],
        [str(bin_dir / "mypy")],
        [str(bin_dir / "lint-imports")],
    ):
        if code := run(*step):
            return code
    return run(str(bin_dir / "pytest"), *args)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"dev", "test"}:
        print(__doc__)
        return 2
    bin_dir = sync()
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    if sys.argv[1] == "test":
        return test(bin_dir, sys.argv[2:])
    return run(str(bin_dir / "lumio"), "dev", *sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
