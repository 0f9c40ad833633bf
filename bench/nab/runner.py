"""``nsentry bench nab``: NAB accuracy and scoring throughput of a detector.

Runs a registered detector (``--algorithm``, default ``auto``, with its
default parameters or ``--params``) causally (in batches, learning as it goes,
the way the service scores ingested points) over every
``DIR/<category>/<file>.csv`` of a NAB-layout folder, writes NAB's result
files ``OUT/<name>/<category>/<name>_<file>.csv``
(``timestamp,value,anomaly_score``; ``name`` is the algorithm unless
``--name`` says otherwise), scores them with the project's NAB scorer
(:mod:`bench.nab.scorer`) and prints the normalised standard,
reward_low_FP_rate and reward_low_FN_rate scores with the thresholds chosen.
Then it measures the scoring throughput of the algorithm (points per second in
batches) next to river's ``GaussianScorer`` on the same values, and prints the
ratio.

``--by-category`` adds the score of each category (folder) at the corpus
threshold and held out (:mod:`bench.nab.categories`). ``--algorithm all``
scores every registered algorithm and prints one table
(:mod:`bench.nab.table`); the throughput comparison is then of ``auto``.

Labels: see :mod:`bench.nab.corpus` (NAB's windows or instants; without
``--labels``, ``windows.json`` beside or in the data folder, or NAB's
``labels/combined_windows.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.nab.categories import by_category, format_categories
from bench.nab.corpus import (
    Series,
    discover,
    epoch_seconds,
    file_case,
    find_labels,
    load_labels,
    read_results,
    read_series,
    result_path,
    write_results,
)
from bench.nab.scorer import PROFILES, CorpusResult, FileCase, evaluate_corpus
from bench.nab.table import AlgorithmRow, format_algorithms, threshold_text
from services.anomaly.detectors import ALGORITHMS, InvalidParams, create

__all__ = [
    "ALL",
    "BATCH",
    "Series",
    "add_arguments",
    "epoch_seconds",
    "file_case",
    "load_labels",
    "read_results",
    "read_series",
    "run",
    "score_series",
    "throughput",
]

#: Points per ``score`` call, as the service would receive them in ingest batches.
BATCH = 1000
#: Batch sizes the throughput is measured at (10,000 is the largest ingest batch).
THROUGHPUT_BATCHES = (1000, 10000)
#: ``--algorithm`` value that scores every registered algorithm.
ALL = "all"
#: The algorithm listed first and measured for throughput with ``--algorithm all``.
DEFAULT = "auto"


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of parameter names to values")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on ``parser``."""
    choices = [*ALGORITHMS, ALL]
    parser.add_argument("--data", required=True, type=Path, help="NAB-layout data folder")
    parser.add_argument(
        "--labels",
        type=Path,
        help="windows (or labels) JSON (default: windows.json beside or in --data, "
        "or ../labels/combined_windows.json)",
    )
    parser.add_argument("--out", required=True, type=Path, help="results folder")
    parser.add_argument(
        "--algorithm",
        default=DEFAULT,
        choices=choices,
        metavar="NAME",
        help=f"registered algorithm to score, or '{ALL}' for a table of every one "
        f"(default {DEFAULT}; one of {', '.join(choices)})",
    )
    parser.add_argument(
        "--params",
        type=_params,
        default=None,
        help="the algorithm's parameters as a JSON object (default: its defaults)",
    )
    parser.add_argument(
        "--name", default=None, help="detector name in the results (default: the algorithm)"
    )
    parser.add_argument(
        "--by-category",
        action="store_true",
        help="also the score of each category, at the corpus threshold and held out",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes scoring files in parallel (default: all cores)",
    )
    parser.add_argument(
        "--no-throughput", action="store_true", help="skip the throughput comparison"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="per-file NAB results, held-out thresholds, and per-file progress with 'all'",
    )


def score_series(
    values: np.ndarray,
    seconds: np.ndarray,
    batch: int = BATCH,
    algorithm: str = DEFAULT,
    params: dict[str, Any] | None = None,
) -> np.ndarray:
    """Scores of a fresh ``algorithm`` detector, fed in consecutive batches (causal)."""
    detector = create(algorithm, dict(params or {}))
    out = np.empty(values.shape[0])
    for start in range(0, values.shape[0], batch):
        stop = start + batch
        out[start:stop] = detector.score(seconds[start:stop], values[start:stop]).score
    return out


@dataclass(frozen=True)
class Job:
    """One file to score with one algorithm (sent to a worker process)."""

    key: str
    path: str
    out_dir: str
    name: str
    algorithm: str
    params: dict[str, Any] | None


@dataclass(frozen=True)
class FileRun:
    """What a worker sends back: the scores, or why there are none."""

    job: Job
    rows: int
    seconds: float  # reading, scoring and writing
    scoring_seconds: float  # scoring only, after a warm-up of the algorithm in the process
    scores: np.ndarray | None
    error: str = ""


# each worker process reads a file once, however many algorithms score it
_SERIES: dict[str, Series] = {}
# algorithms (with their parameters) already run once in this process
_WARM: set[str] = set()


def _warm_up(algorithm: str, params: dict[str, Any] | None) -> None:
    """Score a small series once per process and algorithm, untimed, so that
    one-off costs (imports, JIT compilation) stay out of the measured rate."""
    key = f"{algorithm} {json.dumps(params, sort_keys=True)}"
    if key in _WARM:
        return
    _WARM.add(key)
    n = 3 * BATCH
    rng = np.random.default_rng(0)
    values = 10.0 + np.sin(np.arange(n) / 50.0) + rng.normal(0.0, 0.1, n)
    try:
        score_series(values, np.arange(n) * 60.0, algorithm=algorithm, params=params)
    except Exception:  # the real files will report it
        pass


def _run_file(job: Job) -> FileRun:
    """Worker: score one file and write its NAB result file."""
    started = time.perf_counter()
    series = _SERIES.get(job.path)
    if series is None:
        series = _SERIES[job.path] = read_series(job.key, Path(job.path))
    _warm_up(job.algorithm, job.params)
    try:
        before = time.perf_counter()
        scores = score_series(
            series.values,
            epoch_seconds(series.when),
            algorithm=job.algorithm,
            params=job.params,
        )
        scoring = time.perf_counter() - before
    except Exception as exc:  # one algorithm failing on one file must not stop the table
        return FileRun(job, len(series.values), 0.0, 0.0, None, f"{type(exc).__name__}: {exc}")
    write_results(result_path(Path(job.out_dir), job.name, job.key), series, scores)
    return FileRun(job, len(series.values), time.perf_counter() - started, scoring, scores)


def score_files(jobs: Sequence[Job], workers: int) -> Generator[FileRun, None, None]:
    """Every job's result, in the order of ``jobs``, on ``workers`` processes."""
    workers = max(1, min(int(workers), len(jobs)))
    if workers == 1:
        yield from map(_run_file, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_run_file, jobs, chunksize=1)


def throughput(
    series: Sequence[Series],
    batches: Sequence[int] = THROUGHPUT_BATCHES,
    repeats: int = 3,
    algorithm: str = DEFAULT,
    params: dict[str, Any] | None = None,
) -> tuple[dict[int, float], float | None]:
    """Points per second of ``algorithm`` (per batch size) and of river's GaussianScorer.

    Both score and learn every point of the same series, one fresh model per
    series. River is fed point by point, its only interface. The runs are
    interleaved and the best of ``repeats`` is kept for each, so load from
    other processes on a shared machine hits both sides alike. Returns
    ``({batch: points/s}, river points/s)``; river's is None when river is
    not installed.
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
                score_series(values, seconds, batch, algorithm, params)
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
        shown = _threshold(r.tp + r.fp, r.threshold)
        print(
            f"  {name:<20} {r.normalised:6.1f}   threshold {shown}   "
            f"TP {r.tp}  FP {r.fp}  FN {r.fn}   raw {r.raw:.2f}"
        )
    if verbose:
        print("\nper file (standard profile):")
        for f in result["standard"].files:
            print(f"  {f.name:<62} raw {f.raw:7.3f}  TP {f.tp}  FP {f.fp}  FN {f.fn}")


def _threshold(detections: int, threshold: float) -> str:
    return threshold_text(threshold) if detections else "never (fires on no row)"


def _fail(message: str) -> int:
    print(f"nsentry bench nab: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; returns the process exit code."""
    data: Path = args.data
    algorithm: str = args.algorithm
    params: dict[str, Any] | None = getattr(args, "params", None)
    if not data.is_dir():
        return _fail(f"{data} is not a folder")
    if algorithm == ALL and (args.name is not None or params is not None):
        return _fail(f"--name and --params apply to one algorithm, not --algorithm {ALL}")
    if algorithm != ALL:
        try:
            create(algorithm, dict(params or {}))
        except InvalidParams as exc:
            return _fail(f"{algorithm} cannot be built from these parameters: {exc} (see --params)")
    files = discover(data)
    if not files:
        return _fail(f"no <category>/<file>.csv under {data}")
    labels_path: Path | None = args.labels or find_labels(data)
    if labels_path is None:
        return _fail(f"no --labels given and no windows.json beside or in {data}")
    labels = load_labels(labels_path)
    unknown = sorted(set(labels) - {k for k, _ in files})
    if unknown:
        print(f"note: {len(unknown)} labelled file(s) not in {data}, ignored")

    started = time.perf_counter()
    series = [read_series(key, path) for key, path in files]
    cases = [file_case(s, labels.get(s.key, [])) for s in series]
    total = sum(s.values.shape[0] for s in series)
    if algorithm == ALL:
        _run_all(args, files, cases, total)
    else:
        name = args.name or algorithm
        jobs = [Job(key, str(path), str(args.out), name, algorithm, params) for key, path in files]
        workers = max(1, min(int(args.workers), len(jobs)))
        print(f"scoring {len(jobs)} files with {algorithm} on {workers} worker(s)")
        runs = list(_progress(score_files(jobs, workers), len(jobs), with_algorithm=False))
        failed = [r for r in runs if r.scores is None]
        if failed:
            return _fail(f"{algorithm} failed on {failed[0].job.key}: {failed[0].error}")
        elapsed = time.perf_counter() - started
        print(f"scored {total} points in {elapsed:.1f} s; results in {args.out / name}")
        scores = [r.scores for r in runs if r.scores is not None]
        report(evaluate_corpus(cases, scores), cases, args.verbose)
        if args.by_category:
            print()
            print(format_categories(by_category(cases, scores), thresholds=args.verbose))
    if not args.no_throughput:
        measured = DEFAULT if algorithm == ALL else algorithm
        _print_throughput(series, measured, None if algorithm == ALL else params, total)
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


def _run_all(
    args: argparse.Namespace,
    files: Sequence[tuple[str, Path]],
    cases: Sequence[FileCase],
    total: int,
) -> None:
    """Score every registered algorithm; print one line per algorithm as it
    finishes, then the table (and per algorithm the categories with
    ``--by-category``)."""
    algorithms = sorted(ALGORITHMS, key=lambda a: (a != DEFAULT, list(ALGORITHMS).index(a)))
    rows: list[AlgorithmRow] = []
    runnable: list[str] = []
    for algorithm in algorithms:
        try:
            create(algorithm, {})
            runnable.append(algorithm)
        except InvalidParams as exc:
            rows.append(AlgorithmRow(algorithm, None, note=f"needs parameters ({exc})"))
    jobs = [
        Job(key, str(path), str(args.out), algorithm, algorithm, None)
        for algorithm in runnable
        for key, path in files
    ]
    workers = max(1, min(int(args.workers), len(jobs)))
    print(
        f"scoring {len(files)} files ({total:,} points) with {len(runnable)} algorithms "
        f"on {workers} worker(s); results in {args.out}/<algorithm>"
    )
    width = len(str(len(runnable)))
    stream = score_files(jobs, workers)
    if args.verbose:
        stream = _progress(stream, len(jobs), with_algorithm=True)
    by_category_text: list[str] = []
    for i, algorithm in enumerate(runnable, start=1):
        runs = [next(stream) for _ in files]
        failed = [r for r in runs if r.scores is None]
        scoring = sum(r.scoring_seconds for r in runs)
        if failed:
            note = f"failed on {failed[0].job.key}: {failed[0].error}"
            rows.append(AlgorithmRow(algorithm, None, note=note))
            print(f"  [{i:>{width}}/{len(runnable)}] {algorithm:<14} {note}", flush=True)
            continue
        scores = [r.scores for r in runs if r.scores is not None]
        result = evaluate_corpus(cases, scores)
        rate = total / scoring if scoring > 0 else math.nan
        rows.append(AlgorithmRow(algorithm, result, rate))
        figures = "  ".join(f"{result[p].normalised:5.1f}" for p in PROFILES)
        print(
            f"  [{i:>{width}}/{len(runnable)}] {algorithm:<14} scored in {scoring:5.1f} s "
            f"(CPU, all files)   standard / low-FP / low-FN  {figures}",
            flush=True,
        )
        if args.by_category:
            table = format_categories(by_category(cases, scores), thresholds=args.verbose)
            by_category_text.append(f"\n[{algorithm}]\n{table}")
    stream.close()  # every job is consumed: shut the pool down
    n_windows = sum(len(c.windows) for c in cases)
    print(
        f"\nevery algorithm, default parameters, causal in batches of {BATCH:,}: "
        f"NAB scores on {len(cases)} files, {n_windows} windows, best threshold per profile; "
        "points/s of scoring on one core (after a warm-up)"
    )
    print(format_algorithms(rows, first=DEFAULT))
    for text in by_category_text:
        print(text)


def _print_throughput(
    series: Sequence[Series], algorithm: str, params: dict[str, Any] | None, total: int
) -> None:
    rates, river_rate = throughput(series, algorithm=algorithm, params=params)
    print(f"\nscoring throughput on these {total:,} points (score + learn, best of 3):")
    if river_rate is None:
        print("  river GaussianScorer: not installed (pip install river), no ratio")
    else:
        print(f"  river GaussianScorer          {river_rate:12,.0f} points/s (point by point)")
    for batch, rate in rates.items():
        ratio = "" if river_rate is None else f"   {rate / river_rate:5.1f} x river"
        label = f"{algorithm}, batches of {batch:>6,}"
        print(f"  {label:<29} {rate:12,.0f} points/s{ratio}")


def _progress(
    runs: Iterable[FileRun], total: int, *, with_algorithm: bool
) -> Generator[FileRun, None, None]:
    """Print one line per file as it is done (prefixed by the algorithm with ``all``)."""
    width = len(str(total))
    for i, r in enumerate(runs, start=1):
        tail = f"{r.seconds:6.2f} s" if r.scores is not None else f"failed: {r.error}"
        label = f"{r.job.algorithm} {r.job.key}" if with_algorithm else r.job.key
        print(f"  [{i:>{width}}/{total}] {label:<62} {r.rows:>7} rows {tail}", flush=True)
        yield r
