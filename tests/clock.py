"""The injected clock the tests hand to the services (never the wall clock)."""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    """`clock()` is now; tests move it with `advance` or `set`."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now

    def set(self, at: datetime) -> datetime:
        self.now = at
        return at
