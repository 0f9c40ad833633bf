"""One written corpus per session (seed 7), shared by the corpus-level tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from bench.synth.runner import Summary, write_corpus


@dataclass(frozen=True)
class Written:
    root: Path
    summary: Summary
    windows: dict[str, list[list[str]]]
    anomalies: dict[str, list[dict[str, object]]]
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def stamps(self, key: str) -> np.ndarray:
        return self._read(key)[0]

    def values(self, key: str) -> np.ndarray:
        return self._read(key)[1]

    def _read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        if key not in self.columns:
            text = (self.root / "data" / key).read_text()
            cells = np.array(text.split("\n")[1:-1]).astype(str)
            parts = np.char.partition(cells, ",")
            self.columns[key] = (
                parts[:, 0].astype("datetime64[s]"),
                parts[:, 2].astype(np.float64),
            )
        return self.columns[key]


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    root = tmp_path_factory.mktemp("synth") / "corpus"
    summary = write_corpus(root, 7)
    return Written(
        root,
        summary,
        json.loads((root / "windows.json").read_text()),
        json.loads((root / "anomalies.json").read_text()),
    )
