"""Real parts from Debian's archive for the tests (nginx, Alertmanager, Prometheus,
Chromium): found on the machine, else installed with apt-get when the tests run as
root, as CI does. One installer for all of them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

INSTALL_TIMEOUT_SECONDS = 900


def which(names: Sequence[str], paths: Sequence[str] = ()) -> str | None:
    """The first of ``names`` on PATH, else the first executable of ``paths``."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((path for path in paths if os.access(path, os.X_OK)), None)


def install(
    what: str, packages: Sequence[str], find: Callable[[], str | None]
) -> tuple[str | None, str]:
    """``find()``, installing the first of ``packages`` that apt-get can install when
    it finds nothing; (path or None, why not)."""
    found = find()
    if found:
        return found, ""
    if os.geteuid() != 0:
        return None, f"{what} is not installed and installing it needs root (apt-get)"
    if not shutil.which("apt-get"):
        return None, f"{what} is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Debian starts a freshly installed service unless policy-rc.d says no: a test must
    # not leave a system nginx or Prometheus behind on its well-known port
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        added_policy = True
    log: list[str] = []
    command = ["apt-get", "install", "-y", "--no-install-recommends"]
    try:
        if not any(_run([*command, package], env, log) for package in packages):
            # the package lists may be stale or missing (a fresh container)
            _run(["apt-get", "update"], env, log)
            any(_run([*command, package], env, log) for package in packages)
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)
    found = find()
    if found:
        return found, ""
    return None, f"could not install {what} with apt-get: " + " | ".join(log)[-600:]


def _run(command: list[str], env: dict[str, str], log: list[str]) -> bool:
    try:
        result = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.append(f"{' '.join(command)}: {exc}")
        return False
    if result.returncode != 0:
        log.append(f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
        return False
    return True
