"""CI-sized accuracy regression: the default detector on the synthetic subset.

The small subset of ``nsentry bench synth`` (seed 7, ``--subset``: eight files
from six categories, 28,224 points, 17 windows) is written once, then scored
end to end exactly as ``nsentry bench nab`` scores it (read, score causally in
batches, best threshold over the subset). The floors sit about one window under
what the detector measured when they were set (``auto`` with the weekly table
and the seasonal level gate: standard 70.0, reward_low_FP 62.9, reward_low_FN
74.1, each TP 14 FP 22 FN 3; one window is worth about 6 points here), so a change
that loses accuracy on data unlike NAB fails, as the NAB subset's floor catches
a change that loses it on NAB.
"""

from __future__ import annotations

import pytest

from bench.nab.runner import epoch_seconds, file_case, load_labels, read_series, score_series
from bench.nab.scorer import CorpusResult, FileCase, evaluate_corpus
from bench.synth.runner import write_corpus

Subset = tuple[CorpusResult, list[FileCase]]

SEED = 7
WINDOWS = 17

FLOORS = {"standard": 64.0, "reward_low_FP_rate": 57.0, "reward_low_FN_rate": 68.0}


@pytest.fixture(scope="module")
def subset_result(tmp_path_factory: pytest.TempPathFactory) -> Subset:
    root = tmp_path_factory.mktemp("synth-subset")
    write_corpus(root, seed=SEED, subset=True)
    labels = load_labels(root / "windows.json")
    series = [read_series(key, root / "data" / key) for key in sorted(labels)]
    scores = [score_series(s.values, epoch_seconds(s.when)) for s in series]
    cases = [file_case(s, labels.get(s.key, [])) for s in series]
    return evaluate_corpus(cases, scores), cases


def test_subset_has_its_windows(subset_result: Subset) -> None:
    _, cases = subset_result
    assert sum(len(c.windows) for c in cases) == WINDOWS


@pytest.mark.parametrize("profile", sorted(FLOORS))
def test_synth_subset_score_stays_above_its_floor(subset_result: Subset, profile: str) -> None:
    result, _ = subset_result
    score = result[profile].normalised
    assert score >= FLOORS[profile], (
        f"{profile}: {score:.1f} fell below {FLOORS[profile]} "
        f"(TP {result[profile].tp}, FP {result[profile].fp}, FN {result[profile].fn})"
    )
