#!/usr/bin/env python3
"""One-step set-up and run for ɳSentry, needing only python3 (3.11+).

    python3 dev.py up      # the product: embedded Postgres, both services, the worker
    python3 dev.py test    # every test (ruff, then pytest)

Creates `.venv/` beside this file on first use and installs the project into it
(again only when pyproject.toml changes), then hands over to the `nsentry`
command or to pytest. Any further arguments are passed through.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".nsentry-installed"


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 is
        sys.exit("ɳSentry needs Python 3.11 or newer")
    if not PYTHON.exists():
        _say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    _say("installing ɳSentry and its test tools into .venv (first run or pyproject changed)")
    started = time.monotonic()
    for step in (
        ["install", "--quiet", "--upgrade", "pip"],
        ["install", "--quiet", "-e", f"{ROOT}[test]"],
    ):
        # pip's own chatter is shown only when it fails
        result = subprocess.run([str(PYTHON), "-m", "pip", *step], capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            sys.exit(f"[dev] pip {' '.join(step[:2])} failed (exit {result.returncode})")
    _say(f"installed in {time.monotonic() - started:.0f}s")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "test", "nsentry"}:
        print(__doc__)
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "test":
        lint = subprocess.run([str(BIN / "ruff"), "check", "."])
        if lint.returncode != 0:
            return lint.returncode
        os.execv(str(PYTHON), [str(PYTHON), "-m", "pytest", *rest])
    if command == "up":
        rest = ["up", *rest]
    # exec, not a child: Ctrl-C and SIGTERM reach nsentry itself, which stops cleanly
    os.execv(str(BIN / "nsentry"), [str(BIN / "nsentry"), *rest])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
