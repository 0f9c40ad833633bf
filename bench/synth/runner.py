"""``nsentry bench synth``: write the seeded synthetic corpus in NAB layout.

Writes ``OUT/data/<category>/<file>.csv`` (``timestamp,value``),
``OUT/windows.json`` (NAB's ``combined_windows.json`` form, every file
listed, ``[]`` for a file without anomalies) and ``OUT/anomalies.json``
(each labelled anomaly: kind, size in noise units, onset and last row time),
then prints the files, points and windows per category. Score it with
``nsentry bench nab --data OUT/data --labels OUT/windows.json --out ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.synth.corpus import specs
from bench.synth.series import Series, generate

DEFAULT_SEED = 7


@dataclass(frozen=True)
class FileSummary:
    """One written file."""

    key: str
    cadence: int
    rows: int
    windows: int
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """What :func:`write_corpus` wrote."""

    out: Path
    seed: int
    files: list[FileSummary]
    removed: list[str]

    @property
    def points(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def windows(self) -> int:
        return sum(f.windows for f in self.files)

    def by_category(self) -> dict[str, tuple[int, int, int, int]]:
        """Category -> (files, points, windows, files without windows)."""
        out: dict[str, tuple[int, int, int, int]] = {}
        for f in self.files:
            files, points, windows, clean = out.get(f.key.split("/")[0], (0, 0, 0, 0))
            out[f.key.split("/")[0]] = (
                files + 1,
                points + f.rows,
                windows + f.windows,
                clean + (f.windows == 0),
            )
        return out


class CorpusExists(Exception):
    """The data folder holds CSV files that this corpus would not write."""


def write_corpus(
    out: Path,
    seed: int = DEFAULT_SEED,
    subset: bool = False,
    *,
    force: bool = False,
    progress: Callable[[int, int, Series], None] | None = None,
) -> Summary:
    """Write the corpus (or its small subset) under ``out``; see the module docstring.

    Files of the corpus are overwritten. CSV files under ``out/data`` that the
    corpus does not own would be scored as files without anomalies, so they
    raise :class:`CorpusExists`, unless ``force``, which deletes them.
    """
    chosen = specs(subset)
    data = out / "data"
    owned = {s.key for s in chosen}
    foreign = sorted(f"{p.parent.name}/{p.name}" for p in data.glob("*/*.csv") if p.is_file())
    foreign = [k for k in foreign if k not in owned]
    if foreign and not force:
        raise CorpusExists(
            f"{data} holds {len(foreign)} CSV file(s) this corpus does not write "
            f"(e.g. {foreign[0]}); use --force to delete them, or another --out"
        )
    for key in foreign:
        (data / key).unlink()
    windows: dict[str, list[list[str]]] = {}
    anomalies: dict[str, list[dict[str, object]]] = {}
    files: list[FileSummary] = []
    for i, spec in enumerate(chosen, start=1):
        series = generate(spec, seed)
        target = data / spec.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(series.csv_text().encode())
        windows[spec.key] = series.window_times()
        anomalies[spec.key] = [
            {
                "kind": lab.kind,
                "size": lab.size,
                "onset": series.time_text(lab.start),
                "last": series.time_text(lab.end),
            }
            for lab in series.labels
        ]
        kinds = tuple(lab.kind for lab in series.labels)
        files.append(
            FileSummary(spec.key, spec.cadence, len(series.values), len(series.windows), kinds)
        )
        if progress is not None:
            progress(i, len(chosen), series)
    _write_json(out / "windows.json", windows)
    _write_json(out / "anomalies.json", anomalies)
    return Summary(out, seed, files, foreign)


def _write_json(path: Path, payload: object) -> None:
    path.write_bytes((json.dumps(payload, indent=4, sort_keys=True) + "\n").encode())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on ``parser``."""
    parser.add_argument("--out", required=True, type=Path, help="corpus folder to write")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--subset", action="store_true", help="only the small subset (one file or so per category)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete CSV files under OUT/data that this corpus does not write",
    )


def run(args: argparse.Namespace) -> int:
    """Write the corpus; returns the process exit code."""
    out: Path = args.out

    def report(i: int, total: int, series: Series) -> None:
        kinds = ", ".join(lab.kind for lab in series.labels) or "no anomalies"
        print(
            f"  [{i:>{len(str(total))}}/{total}] {series.key:<42} {len(series.values):>7,} rows "
            f"{len(series.windows):>2} windows  ({kinds})",
            flush=True,
        )

    what = "subset" if args.subset else "corpus"
    print(f"writing the synthetic {what} (seed {args.seed}) to {out}")
    try:
        summary = write_corpus(out, args.seed, args.subset, force=args.force, progress=report)
    except CorpusExists as exc:
        print(f"nsentry bench synth: {exc}", file=sys.stderr)
        return 2
    for key in summary.removed:
        print(f"  removed {key} (not part of this corpus)")
    print(f"\n  {'category':<12} {'files':>5} {'points':>9} {'windows':>7} {'no anomaly':>10}")
    for category, (files, points, windows, clean) in summary.by_category().items():
        print(f"  {category:<12} {files:>5} {points:>9,} {windows:>7} {clean:>10}")
    print(
        f"  {'total':<12} {len(summary.files):>5} {summary.points:>9,} {summary.windows:>7} "
        f"{sum(f.windows == 0 for f in summary.files):>10}"
    )
    print(
        f"\nscore it: nsentry bench nab --data {out / 'data'} "
        f"--labels {out / 'windows.json'} --out OUT"
    )
    return 0
