"""``nsentry bench synth`` and ``write_corpus``: layout, determinism, what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.synth.corpus import CATALOGUE, specs
from bench.synth.runner import CorpusExists, write_corpus
from services.cli import main
from tests.bench.synth.conftest import Written


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_layout_is_nab_layout(written: Written) -> None:
    root = written.root
    csvs = sorted(str(p.relative_to(root / "data")) for p in (root / "data").rglob("*"))
    csvs = [c for c in csvs if c.endswith(".csv")]
    assert csvs == sorted(s.key for s in CATALOGUE)
    assert all(len(Path(c).parts) == 2 for c in csvs)  # <category>/<file>.csv
    assert set(written.windows) == set(csvs)  # every file listed, [] when clean
    assert sorted(p.name for p in root.iterdir()) == ["anomalies.json", "data", "windows.json"]


def test_same_seed_same_bytes(written: Written, tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "one", 7, subset=True)
    second = write_corpus(tmp_path / "two", 7, subset=True)
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    assert first.files == second.files
    # and the same bytes as the full corpus of that seed (see also the subset test)
    for key, text in tree(tmp_path / "one" / "data").items():
        assert text == (written.root / "data" / key).read_bytes(), key


def test_other_seed_changes_every_file(written: Written, tmp_path: Path) -> None:
    write_corpus(tmp_path / "s8", 8, subset=True)
    other = tree(tmp_path / "s8" / "data")
    assert len(other) == len(specs(subset=True))
    for key, text in other.items():
        assert text != (written.root / "data" / key).read_bytes(), key
    assert (tmp_path / "s8" / "windows.json").read_bytes() != (
        written.root / "windows.json"
    ).read_bytes()


def test_subset_files_are_the_corpus_files(written: Written, tmp_path: Path) -> None:
    """Each file is seeded by its own name: leaving files out changes no other file."""
    summary = write_corpus(tmp_path / "small", 7, subset=True)
    small = tree(tmp_path / "small" / "data")
    assert 6 <= len(small) <= 8
    assert {k.split("/")[0] for k in small} == {s.category for s in CATALOGUE}
    for key, text in small.items():
        assert text == (written.root / "data" / key).read_bytes(), key
    assert all(1000 <= f.rows <= 5000 for f in summary.files)
    assert any(f.windows == 0 for f in summary.files)
    assert {f.cadence for f in summary.files} == {60, 300, 3600}
    windows = json.loads((tmp_path / "small" / "windows.json").read_text())
    assert windows == {k: written.windows[k] for k in small}


def test_summary_counts_what_was_written(written: Written) -> None:
    summary = written.summary
    assert summary.points == sum(len(written.values(k)) for k in written.windows)
    assert summary.windows == sum(len(w) for w in written.windows.values())
    by_category = summary.by_category()
    assert sum(files for files, _, _, _ in by_category.values()) == len(CATALOGUE)
    for category, (files, points, windows, clean) in by_category.items():
        keys = [k for k in written.windows if k.startswith(f"{category}/")]
        assert files == len(keys)
        assert points == sum(len(written.values(k)) for k in keys)
        assert windows == sum(len(written.windows[k]) for k in keys)
        assert clean == sum(not written.windows[k] for k in keys)


def test_refuses_foreign_csv_files_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "c"
    write_corpus(out, 7, subset=True)
    write_corpus(out, 7, subset=True)  # its own files are simply rewritten
    stray = out / "data" / "traffic" / "old_file.csv"
    stray.write_text("timestamp,value\n")
    with pytest.raises(CorpusExists, match="old_file.csv"):
        write_corpus(out, 7, subset=True)
    assert stray.exists()
    summary = write_corpus(out, 7, subset=True, force=True)
    assert summary.removed == ["traffic/old_file.csv"] and not stray.exists()


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["bench", "synth", "--out", str(out), "--subset", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    n = len(specs(subset=True))
    assert f"[{n}/{n}]" in printed and "seed 3" in printed
    for category in ("traffic", "errors", "latency", "resources", "queues", "events", "total"):
        assert category in printed
    assert tree(out) == tree(_written(tmp_path / "direct", 3))
    (out / "data" / "events" / "stray.csv").write_text("timestamp,value\n")
    assert main(["bench", "synth", "--out", str(out), "--subset", "--seed", "3"]) == 2
    assert "stray.csv" in capsys.readouterr().err
    assert main(["bench", "synth", "--out", str(out), "--subset", "--force"]) == 0
    assert "removed events/stray.csv" in capsys.readouterr().out


def _written(out: Path, seed: int) -> Path:
    write_corpus(out, seed, subset=True)
    return out
