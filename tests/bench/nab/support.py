"""A tiny synthetic corpus in NAB layout, and the command run on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from services.anomaly.detectors import ALGORITHMS, InvalidParams, create
from services.cli import main

START = np.datetime64("2024-03-01T00:00:00", "s")
STEP = np.timedelta64(300, "s")

Corpus = dict[str, object]


def write_csv(path: Path, values: np.ndarray, *, repeat_at: int | None = None) -> list[str]:
    stamps = START + STEP * np.arange(values.shape[0])
    if repeat_at is not None:  # a repeated time stamp, as a few NAB files have
        stamps[repeat_at] = stamps[repeat_at - 1]
    text = [str(s).replace("T", " ") for s in stamps]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        writer.writerows(zip(text, values.tolist(), strict=True))
    return text


def stamp(i: int) -> str:
    return str(START + STEP * i).replace("T", " ")


def seconds_of(n: int) -> np.ndarray:
    """Epoch seconds of the first ``n`` rows written by ``write_csv``."""
    return (START + STEP * np.arange(n)).astype(np.int64).astype(np.float64)


def make_corpus(root: Path) -> Corpus:
    """Three files in two categories, two labelled windows, one repeated time stamp."""
    rng = np.random.default_rng(42)
    data = root / "data"
    spiky = 20.0 + rng.normal(0.0, 1.0, 600)
    spiky[450] = 45.0
    step = np.full(400, 7.0) + rng.normal(0.0, 0.1, 400)
    step[300:] += 5.0
    quiet = 3.0 + rng.normal(0.0, 0.5, 350)
    files = {
        "webA/latency.csv": (spiky, None),
        "webA/quiet.csv": (quiet, 200),
        "jobs/queue.csv": (step, None),
    }
    stamps = {key: write_csv(data / key, v, repeat_at=r) for key, (v, r) in files.items()}
    (data / "README.md").write_text("not a category\n")
    labels = root / "windows.json"
    labels.write_text(
        json.dumps(
            {
                "webA/latency.csv": [[stamp(430), stamp(470)]],
                "jobs/queue.csv": [[stamp(290), stamp(320)]],
                "gone/missing.csv": [],
            }
        )
    )
    return {"root": root, "data": data, "labels": labels, "files": files, "stamps": stamps}


def run_cli(corpus: Corpus, *extra: str, labels: bool = True) -> int:
    root = corpus["root"]
    assert isinstance(root, Path)
    given = ["--labels", str(corpus["labels"])] if labels else []
    return main(
        [
            "bench",
            "nab",
            "--data",
            str(corpus["data"]),
            *given,
            "--out",
            str(root / "out"),
            "--no-throughput",
            *extra,
        ]
    )


def read_result(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def result_scores(path: Path) -> np.ndarray:
    _, rows = read_result(path)
    return np.array([float(r[2]) for r in rows])


def runnable_algorithms() -> list[str]:
    """The registered algorithms that can be built from their defaults."""
    out = []
    for name in ALGORITHMS:
        try:
            create(name, {})
        except InvalidParams:
            continue
        out.append(name)
    return out
