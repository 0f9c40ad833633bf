"""``nsentry bench nab``: NAB accuracy and scoring throughput of the default detector.

Runs the ``auto`` detector causally (in batches, learning as it goes, the way
the service scores ingested points) over every ``DIR/<category>/<file>.csv``
of a NAB-layout folder, writes NAB's result files
``OUT/<name>/<category>/<name>_<file>.csv`` (``timestamp,value,anomaly_score``),
scores them with the project's NAB scorer (:mod:`bench.nab.scorer`) and
prints the normalised standard, reward_low_FP_rate and reward_low_FN_rate
scores with the thresholds chosen. Then it measures the scoring throughput of
``auto`` (points per second in batches) next to river's ``GaussianScorer`` on
the same values, and prints the ratio.

Labels: a JSON object mapping ``<category>/<file>.csv`` to a list of
``[start, end]`` windows (NAB's ``combined_windows.json``) or to a list of
labelled instants (``combined_labels.json``; windows are then made by NAB's
rule). A file missing from the labels has no window.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.nab.scorer import (
    PROFILES,
    CorpusResult,
    FileCase,
    evaluate_corpus,
    windows_from_labels,
    windows_to_indices,
)
from services.anomaly.detectors.auto import AutoDetector

#: Points per ``score`` call, as the service would receive them in ingest batches.
BATCH = 1000
#: Batch sizes the throughput is measured at (10,000 is the largest ingest batch).
THROUGHPUT_BATCHES = (1000, 10000)
#: Shortest step used to make equal or decreasing time stamps strictly increasing.
_NUDGE_SECONDS = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on ``parser``."""
    parser.add_argument("--data", required=True, type=Path, help="NAB-layout data folder")
    parser.add_argument("--labels", required=True, type=Path, help="windows (or labels) JSON")
    parser.add_argument("--out", required=True, type=Path, help="results folder")
    parser.add_argument("--name", default="sentry", help="detector name in the results")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes scoring files in parallel (default: all cores)",
    )
    parser.add_argument(
        "--no-throughput", action="store_true", help="skip the throughput comparison"
    )
    parser.add_argument("--verbose", action="store_true", help="per-file NAB results")


@dataclass(frozen=True)
class Series:
    """One CSV file of the corpus."""

    key: str
    path: Path
    timestamps: list[str]
    when: np.ndarray  # datetime64[ms]
    values: np.ndarray


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


def score_series(values: np.ndarray, seconds: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Scores of the default detector, fed in consecutive batches (causal)."""
    detector = AutoDetector()
    out = np.empty(values.shape[0])
    for start in range(0, values.shape[0], batch):
        stop = start + batch
        out[start:stop] = detector.score(seconds[start:stop], values[start:stop]).score
    return out


def _run_file(job: tuple[str, str, str, str]) -> tuple[str, int, float]:
    """Worker: score one file and write its NAB result file."""
    key, path, out_dir, name = job
    started = time.perf_counter()
    series = read_series(key, Path(path))
    scores = score_series(series.values, epoch_seconds(series.when))
    category, filename = key.split("/", 1)
    target = Path(out_dir) / name / category / f"{name}_{filename}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for stamp, value, score in zip(
            series.timestamps, series.values.tolist(), scores.tolist(), strict=True
        ):
            writer.writerow([stamp, repr(value), repr(score)])
    return key, int(series.values.shape[0]), time.perf_counter() - started


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


def read_results(out_dir: Path, name: str, key: str) -> np.ndarray:
    """The ``anomaly_score`` column of a written result file."""
    category, filename = key.split("/", 1)
    path = out_dir / name / category / f"{name}_{filename}"
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = header.index("anomaly_score")
        return np.asarray([float(row[col]) for row in reader if row], dtype=np.float64)


def throughput(
    series: Sequence[Series], batches: Sequence[int] = THROUGHPUT_BATCHES, repeats: int = 3
) -> tuple[dict[int, float], float | None]:
    """Points per second of ``auto`` (per batch size) and of river's GaussianScorer.

    Both score and learn every point of the same series, one fresh model per
    series. River is fed point by point, its only interface. The runs are
    interleaved and the best of ``repeats`` is kept for each, so load from
    other processes on a shared machine hits both sides alike. Returns
    ``({batch: auto points/s}, river points/s)``; river's is None when river
    is not installed.
    """
    prepared = [(epoch_seconds(s.when), s.values) for s in series]
    lists = [v.tolist() for _, v in prepared]
    total = sum(v.shape[0] for _, v in prepared)
    try:
        from river import anomaly
    except ImportError:
        anomaly = None
    best = {b: math.inf for b in batches}
    best_river = math.inf
    for _ in range(repeats):
        for batch in batches:
            started = time.perf_counter()
            for seconds, values in prepared:
                score_series(values, seconds, batch)
            best[batch] = min(best[batch], time.perf_counter() - started)
        if anomaly is not None:
            started = time.perf_counter()
            for values in lists:
                scorer = anomaly.GaussianScorer()
                for x in values:
                    scorer.score_one(None, x)
                    scorer.learn_one(None, x)
            best_river = min(best_river, time.perf_counter() - started)
    rates = {b: total / t for b, t in best.items()}
    return rates, (None if anomaly is None else total / best_river)


def report(result: CorpusResult, cases: Sequence[FileCase], verbose: bool) -> None:
    """Print the NAB scores (and the per-file standard results with ``verbose``)."""
    n_windows = sum(len(c.windows) for c in cases)
    print(f"\nNAB scores ({len(cases)} files, {n_windows} windows), best threshold per profile:")
    for name in PROFILES:
        r = result[name]
        print(
            f"  {name:<20} {r.normalised:6.1f}   threshold {r.threshold:.6f}   "
            f"TP {r.tp}  FP {r.fp}  FN {r.fn}   raw {r.raw:.2f}"
        )
    if verbose:
        print("\nper file (standard profile):")
        for f in result["standard"].files:
            print(f"  {f.name:<62} raw {f.raw:7.3f}  TP {f.tp}  FP {f.fp}  FN {f.fn}")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; returns the process exit code."""
    data: Path = args.data
    if not data.is_dir():
        print(f"nsentry bench nab: {data} is not a folder", file=sys.stderr)
        return 2
    files = discover(data)
    if not files:
        print(f"nsentry bench nab: no <category>/<file>.csv under {data}", file=sys.stderr)
        return 2
    labels = load_labels(args.labels)
    unknown = sorted(set(labels) - {k for k, _ in files})
    if unknown:
        print(f"note: {len(unknown)} labelled file(s) not in {data}, ignored")

    started = time.perf_counter()
    jobs = [(key, str(path), str(args.out), args.name) for key, path in files]
    workers = max(1, min(int(args.workers), len(jobs)))
    print(f"scoring {len(jobs)} files with auto on {workers} worker(s)")
    width = len(str(len(jobs)))
    if workers == 1:
        done = map(_run_file, jobs)
        _progress(done, len(jobs), width)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            _progress(pool.map(_run_file, jobs, chunksize=1), len(jobs), width)
    elapsed = time.perf_counter() - started

    series = [read_series(key, path) for key, path in files]
    cases = [file_case(s, labels.get(s.key, [])) for s in series]
    scores = [read_results(args.out, args.name, s.key) for s in series]
    total = sum(s.values.shape[0] for s in series)
    print(f"scored {total} points in {elapsed:.1f} s; results in {args.out / args.name}")
    report(evaluate_corpus(cases, scores), cases, args.verbose)

    if not args.no_throughput:
        rates, river_rate = throughput(series)
        print(f"\nscoring throughput on these {total:,} points (score + learn, best of 3):")
        if river_rate is None:
            print("  river GaussianScorer: not installed (pip install river), no ratio")
        else:
            print(f"  river GaussianScorer          {river_rate:12,.0f} points/s (point by point)")
        for batch, rate in rates.items():
            ratio = "" if river_rate is None else f"   {rate / river_rate:5.1f} x river"
            print(f"  auto, batches of {batch:>6,}      {rate:12,.0f} points/s{ratio}")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


def _progress(results: Iterable[tuple[str, int, float]], total: int, width: int) -> None:
    for i, (key, rows, seconds) in enumerate(results, start=1):
        print(f"  [{i:>{width}}/{total}] {key:<62} {rows:>7} rows {seconds:6.2f} s", flush=True)
