"""A NAB-layout corpus on disk: its series, its labels and the result files.

Layout: ``DATA/<category>/<file>.csv`` with a ``timestamp,value`` header
(naive time stamps meaning UTC); labels in one JSON object mapping
``<category>/<file>.csv`` to a list of ``[start, end]`` windows (NAB's
``combined_windows.json``, and what ``nsentry bench synth`` writes as
``windows.json``) or to a list of labelled instants (``combined_labels.json``;
windows are then made by NAB's rule). A file missing from the labels has no
window. Result files are NAB's: ``OUT/<name>/<category>/<name>_<file>.csv``
with ``timestamp,value,anomaly_score``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.nab.scorer import FileCase, windows_from_labels, windows_to_indices

#: Shortest step used to make equal or decreasing time stamps strictly increasing.
_NUDGE_SECONDS = 1e-3
#: Where a labels file is looked for when none is named, relative to DATA.
LABEL_CANDIDATES = ("../windows.json", "windows.json", "../labels/combined_windows.json")


@dataclass(frozen=True)
class Series:
    """One CSV file of the corpus."""

    key: str
    path: Path
    timestamps: list[str]
    when: np.ndarray  # datetime64[ms]
    values: np.ndarray


def category_of(key: str) -> str:
    """The category (folder name) of a ``<category>/<file>.csv`` key."""
    return key.split("/", 1)[0]


def discover(data: Path) -> list[tuple[str, Path]]:
    """Every ``<category>/<file>.csv`` under ``data``, sorted by key."""
    return sorted((f"{p.parent.name}/{p.name}", p) for p in data.glob("*/*.csv") if p.is_file())


def read_series(key: str, path: Path) -> Series:
    """Read a ``timestamp,value`` CSV (naive time stamps meaning UTC)."""
    stamps: list[str] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected a 'timestamp,value' header")
        for row in reader:
            if not row:
                continue
            stamps.append(row[0].strip())
            values.append(float(row[1]))
    when = np.array([s.replace(" ", "T") for s in stamps], dtype="datetime64[ms]")
    return Series(key, path, stamps, when, np.asarray(values, dtype=np.float64))


def epoch_seconds(when: np.ndarray) -> np.ndarray:
    """Seconds since the epoch, nudged to be strictly increasing.

    The detectors require strictly increasing time stamps; a few NAB files
    repeat or step back a time stamp. Such a row is placed 1 ms after the
    previous one (its value is kept), which leaves every other row unchanged.
    """
    seconds = when.astype("datetime64[ms]").astype(np.int64).astype(np.float64) / 1000.0
    if seconds.size > 1 and np.any(np.diff(seconds) <= 0.0):
        for i in range(1, seconds.size):
            if seconds[i] <= seconds[i - 1]:
                seconds[i] = seconds[i - 1] + _NUDGE_SECONDS
    return seconds


def find_labels(data: Path) -> Path | None:
    """The labels file beside a data folder when none is named (first that exists).

    ``nsentry bench synth --out DIR`` writes ``DIR/data`` and ``DIR/windows.json``;
    NAB's repository has ``data/`` and ``labels/combined_windows.json``.
    """
    for candidate in LABEL_CANDIDATES:
        path = (data / candidate).resolve()
        if path.is_file():
            return path
    return None


def load_labels(path: Path) -> dict[str, list[object]]:
    """The labels JSON (key -> windows or instants)."""
    with path.open() as handle:
        labels = json.load(handle)
    if not isinstance(labels, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return labels


def file_case(series: Series, labels: object) -> FileCase:
    """Windows of one file from its label entry (windows, instants or none)."""
    entries = list(labels) if isinstance(labels, list) else []
    if entries and all(isinstance(e, str) for e in entries):
        when = np.array([e.replace(" ", "T") for e in entries], dtype="datetime64[ms]")
        rows = np.searchsorted(series.when, when, side="left")
        rows = rows[rows < series.when.shape[0]]
        windows = windows_from_labels(series.when.shape[0], rows.tolist())
    else:
        windows = windows_to_indices(series.when, [tuple(e) for e in entries])
    return FileCase(series.key, int(series.values.shape[0]), windows)


def result_path(out_dir: Path, name: str, key: str) -> Path:
    """NAB's result file of ``key`` for the detector ``name``."""
    category, filename = key.split("/", 1)
    return out_dir / name / category / f"{name}_{filename}"


def write_results(target: Path, series: Series, scores: np.ndarray) -> None:
    """Write ``timestamp,value,anomaly_score`` (time stamps as read, exact floats)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        writer.writerows(
            zip(
                series.timestamps,
                map(repr, series.values.tolist()),
                map(repr, scores.tolist()),
                strict=True,
            )
        )


def read_results(out_dir: Path, name: str, key: str) -> np.ndarray:
    """The ``anomaly_score`` column of a written result file."""
    with result_path(out_dir, name, key).open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = header.index("anomaly_score")
        return np.asarray([float(row[col]) for row in reader if row], dtype=np.float64)
