"""One series of the corpus: its spec, its seeded generation, its NAB windows.

:func:`generate` is deterministic: the generator of a file is seeded from the
corpus seed and the file's key (``<category>/<file>.csv``), so the same seed
gives the same bytes and adding a file to the catalogue changes no other.
Order of work for a file: the base signal (:mod:`.recipes`), the anomalies
(:mod:`.anomalies`) on its level and noise, the values drawn, flatlines,
clipping and rounding, then the missing rows (monitoring gaps and, for some
series, single scrapes lost at random). The onset row of every anomaly is
always kept. Windows follow NAB's rule on the rows that remain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from bench.synth.anomalies import JITTER, Anomaly, Label, flatten, inject, place, rows_of
from bench.synth.shapes import Signal

#: NAB's window size: this fraction of a file's rows, shared by its anomalies.
WINDOW_FRACTION = 0.10
#: No window narrower than this many rows (a file with many anomalies).
MIN_WINDOW_ROWS = 10
WINDOW_TIME_FORMAT = "{}.000000"

Recipe = Callable[..., Signal]


@dataclass(frozen=True)
class Spec:
    """How one file is made."""

    key: str  # "<category>/<file>.csv"
    cadence: int  # seconds between rows
    days: float
    start: str  # first row, "YYYY-MM-DD" (midnight UTC)
    recipe: Recipe
    params: Mapping[str, float] = field(default_factory=dict)
    anomalies: tuple[Anomaly, ...] = ()
    gaps: tuple[tuple[float, float], ...] = ()  # (where as a fraction, minutes missing)
    drop: float = 0.0  # share of single rows lost at random (missed scrapes)
    decimals: int = 2  # 0: integers
    lo: float | None = 0.0
    hi: float | None = None
    subset: bool = False  # part of the small corpus (``--subset``)

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]


@dataclass(frozen=True)
class Series:
    """A generated file: its rows, its labelled anomalies and its windows (row indices)."""

    key: str
    stamps: np.ndarray  # datetime64[s]
    values: np.ndarray
    decimals: int
    labels: list[Label]
    windows: list[tuple[int, int]]

    def csv_text(self) -> str:
        """The file's text: ``timestamp,value`` and one line per row."""
        stamps = np.datetime_as_string(self.stamps, unit="s").tolist()
        if self.decimals == 0:
            values = list(map(str, self.values.astype(np.int64).tolist()))
        else:
            values = list(map(f"{{:.{self.decimals}f}}".format, self.values.tolist()))
        body = "\n".join(map(",".join, zip(stamps, values, strict=True)))
        return "timestamp,value\n" + body.replace("T", " ") + "\n"

    def window_times(self) -> list[list[str]]:
        """Windows in NAB's ``combined_windows.json`` form."""
        return [[self.time_text(a), self.time_text(b)] for a, b in self.windows]

    def time_text(self, row: int) -> str:
        return WINDOW_TIME_FORMAT.format(str(self.stamps[row]).replace("T", " "))


def file_seed(seed: int, key: str) -> np.random.SeedSequence:
    """The seed sequence of one file: the corpus seed and the file's key."""
    digest = hashlib.sha256(key.encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.SeedSequence([int(seed), *words])


def generate(spec: Spec, seed: int) -> Series:
    """Make one file of the corpus."""
    rng = np.random.default_rng(file_seed(seed, spec.key))
    n = int(round(spec.days * 86400 / spec.cadence))
    first = np.datetime64(spec.start, "s")
    t = first.astype(np.int64).astype(np.float64) + spec.cadence * np.arange(n, dtype=np.float64)
    sig = spec.recipe(rng, t, **spec.params)
    rows = [place(a, t, rng) for a in spec.anomalies]
    labels = [inject(sig, a, r, rng) for a, r in zip(spec.anomalies, rows, strict=True)]
    values = sig.compose(rng)
    for label in labels:
        if label.kind == "flatline":
            flatten(values, label)
    if spec.lo is not None or spec.hi is not None:
        values = np.clip(values, spec.lo, spec.hi)
    values = np.round(values, spec.decimals) + 0.0  # no "-0.00"

    keep = np.ones(n, dtype=bool)
    for at, minutes in spec.gaps:
        start = int(round((at + rng.uniform(-JITTER, JITTER)) * n))
        stop = start + rows_of(minutes, spec.cadence)
        for label in labels:
            if start <= label.end + 1 and label.start <= stop:
                raise ValueError(f"{spec.key}: the gap at {at} meets the {label.kind} anomaly")
        keep[start:stop] = False
    if spec.drop:
        keep &= rng.random(n) >= spec.drop
    for label in labels:
        keep[label.start] = True
    kept = np.flatnonzero(keep)
    moved = [
        Label(
            lab.kind,
            int(np.searchsorted(kept, lab.start)),
            int(np.searchsorted(kept, lab.end, side="right")) - 1,
            lab.size,
        )
        for lab in labels
    ]
    stamps = (first + np.arange(n) * np.timedelta64(spec.cadence, "s"))[kept]
    return Series(
        spec.key, stamps, values[kept], spec.decimals, moved, nab_windows(kept.size, moved)
    )


def nab_windows(n: int, labels: list[Label]) -> list[tuple[int, int]]:
    """NAB's windows: ``10 %`` of the rows shared by the anomalies, centred on each onset.

    Each onset gets a window of ``max(int(0.10 * n / k), MIN_WINDOW_ROWS)``
    rows centred on it (``k`` anomalies in the file). A window is stretched to
    the right to cover an anomaly that lasts longer than its right half, by at
    most one window width (a detection during a long flatline or ramp is not
    a false positive). Windows are clipped to the file and overlaps merge.
    """
    if not labels:
        return []
    width = max(int(WINDOW_FRACTION * n / len(labels)), MIN_WINDOW_ROWS)
    half = width // 2
    merged: list[tuple[int, int]] = []
    for label in sorted(labels, key=lambda lab: lab.start):
        left = max(label.start - half, 0)
        right = min(max(label.start + half, min(label.end, label.start + width)), n - 1)
        if merged and left <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], right))
        else:
            merged.append((left, right))
    return merged
