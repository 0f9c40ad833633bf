"""CI-sized accuracy regression: the default detector on a fixed subset of NAB.

Six files from six categories, scored end to end exactly as ``nsentry bench
nab`` does (read, score causally in batches, best threshold over the subset).
The six files are committed under ``tests/data/nab_subset``. The floors sit
about one window under what the detector measured when they were set (``auto``
at fcd94f6: standard 75.1, reward_low_FP 72.5, reward_low_FN 77.9, each TP 15
FP 9 FN 3 on 18 windows; one window is worth about 5 points here), so a change
that loses accuracy fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.nab.runner import epoch_seconds, file_case, read_series, score_series
from bench.nab.scorer import CorpusResult, FileCase, evaluate_corpus

Subset = tuple[CorpusResult, list[FileCase]]

# committed with the tests (MIT, see its README), so CI always checks the floor
NAB = Path(__file__).parents[2] / "data" / "nab_subset"

SUBSET = (
    "artificialWithAnomaly/art_daily_jumpsdown.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "realAdExchange/exchange-3_cpc_results.csv",
    "realKnownCause/nyc_taxi.csv",
    "realTraffic/speed_7578.csv",
    "realTweets/Twitter_volume_GOOG.csv",
)

FLOORS = {"standard": 70.0, "reward_low_FP_rate": 67.0, "reward_low_FN_rate": 72.0}


@pytest.fixture(scope="module")
def subset_result() -> Subset:
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    series = [read_series(key, NAB / "data" / key) for key in SUBSET]
    scores = [score_series(s.values, epoch_seconds(s.when)) for s in series]
    cases = [file_case(s, labels.get(s.key, [])) for s in series]
    return evaluate_corpus(cases, scores), cases


def test_subset_has_its_windows(subset_result: Subset) -> None:
    _, cases = subset_result
    assert sum(len(c.windows) for c in cases) == 18


@pytest.mark.parametrize("profile", sorted(FLOORS))
def test_nab_subset_score_stays_above_its_floor(subset_result: Subset, profile: str) -> None:
    result, _ = subset_result
    score = result[profile].normalised
    assert score >= FLOORS[profile], (
        f"{profile}: {score:.1f} fell below {FLOORS[profile]} "
        f"(TP {result[profile].tp}, FP {result[profile].fp}, FN {result[profile].fn})"
    )
