"""NAB scores per category, and leave-one-category-out (``--by-category``).

A category is the folder of a file (``<category>/<file>.csv``). For each
category and profile two figures are computed, both normalised the way NAB
normalises a corpus, ``100 * (raw - null) / (perfect - null)``, over that
category's own files and windows (``null`` misses every window of the
category, ``perfect`` finds each at its first row):

* **corpus**: the category's files scored at the corpus-wide best threshold
  (the threshold of the headline score), so the categories show where that
  score comes from;
* **held out** (leave one category out): the category's files scored at the
  threshold that is best on all the *other* categories. The category played no
  part in choosing it, so this is the honest figure of how the detector and
  its threshold carry over to a kind of data they were not tuned on.

The totals row adds the raw scores of the categories: at the corpus threshold
it is the corpus score; held out it is the corpus scored with each category at
its own held-out threshold.

A category without a window (NAB's ``artificialNoAnomaly``) has no normalised
score (``null == perfect``); its false positives still count in the totals and
are shown in the table.

Pure: plain values in, plain values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.nab.corpus import category_of
from bench.nab.scorer import (
    PROFILES,
    FileCase,
    Profile,
    best_threshold,
    normalise,
    score_file,
)
from bench.nab.table import SHORT_PROFILE, Column, render, score_text, threshold_text

#: Name of the totals row.
TOTAL = "all categories"


@dataclass(frozen=True)
class Scored:
    """A group of files scored at one threshold under one profile."""

    threshold: float
    raw: float
    normalised: float  # NaN when the group has no window
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class CategoryResult:
    """One category (or the totals): its size and both figures per profile."""

    category: str
    files: int
    windows: int
    corpus: dict[str, Scored]
    held_out: dict[str, Scored]


def score_group(
    cases: Sequence[FileCase], scores: Sequence[np.ndarray], threshold: float, profile: Profile
) -> Scored:
    """Files scored at ``threshold``, normalised over their own windows."""
    results = [score_file(c, s, threshold, profile) for c, s in zip(cases, scores, strict=True)]
    raw = float(sum(r.raw for r in results))
    n_windows = sum(len(c.windows) for c in cases)
    return Scored(
        threshold=threshold,
        raw=raw,
        normalised=normalise(raw, n_windows, profile),
        tp=sum(r.tp for r in results),
        fp=sum(r.fp for r in results),
        fn=sum(r.fn for r in results),
    )


def by_category(
    cases: Sequence[FileCase],
    scores: Sequence[np.ndarray],
    profiles: Mapping[str, Profile] | None = None,
) -> list[CategoryResult]:
    """Per category (sorted by name), then the totals row.

    Parameters
    ----------
    cases : sequence of FileCase
        The files; ``FileCase.name`` is ``<category>/<file>.csv``.
    scores : sequence of numpy.ndarray
        Per-row scores of each file, in the same order.
    profiles : mapping, optional
        Profiles to evaluate (default: NAB's three).

    Returns
    -------
    list of CategoryResult
        One per category, then one named :data:`TOTAL`. With a single
        category, "held out" is the threshold chosen on no file at all
        (never fire).
    """
    chosen = dict(profiles or PROFILES)
    groups: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(category_of(case.name), []).append(i)
    corpus_threshold = {n: best_threshold(cases, scores, p)[0] for n, p in chosen.items()}
    rows: list[CategoryResult] = []
    for category in sorted(groups):
        inside = groups[category]
        outside = [i for i in range(len(cases)) if category_of(cases[i].name) != category]
        own_cases = [cases[i] for i in inside]
        own_scores = [scores[i] for i in inside]
        other_cases = [cases[i] for i in outside]
        other_scores = [scores[i] for i in outside]
        corpus: dict[str, Scored] = {}
        held_out: dict[str, Scored] = {}
        for name, profile in chosen.items():
            corpus[name] = score_group(own_cases, own_scores, corpus_threshold[name], profile)
            loco = held_out_threshold(other_cases, other_scores, own_scores, profile)
            held_out[name] = score_group(own_cases, own_scores, loco, profile)
        rows.append(
            CategoryResult(
                category,
                len(inside),
                sum(len(c.windows) for c in own_cases),
                corpus,
                held_out,
            )
        )
    rows.append(_totals(rows, chosen))
    return rows


def held_out_threshold(
    other_cases: Sequence[FileCase],
    other_scores: Sequence[np.ndarray],
    own_scores: Sequence[np.ndarray],
    profile: Profile,
) -> float:
    """The best threshold on the other categories' files only.

    When the best there is "never fire", the threshold is placed above every
    score of the held-out files too, so that it means never fire for them as
    well (the scorer's "never" is just above the highest score it was shown).
    """
    threshold, raw = best_threshold(other_cases, other_scores, profile)
    base = -profile.fn * sum(len(c.windows) for c in other_cases)
    if raw <= base:
        top = max((float(np.max(s)) for s in own_scores if len(s)), default=threshold)
        threshold = max(threshold, float(np.nextafter(top, np.inf)))
    return threshold


def _totals(rows: Sequence[CategoryResult], profiles: Mapping[str, Profile]) -> CategoryResult:
    windows = sum(r.windows for r in rows)

    def total(part: list[Scored], profile: Profile) -> Scored:
        raw = sum(s.raw for s in part)
        same = {s.threshold for s in part}
        return Scored(
            threshold=same.pop() if len(same) == 1 else math.nan,
            raw=raw,
            normalised=normalise(raw, windows, profile),
            tp=sum(s.tp for s in part),
            fp=sum(s.fp for s in part),
            fn=sum(s.fn for s in part),
        )

    return CategoryResult(
        TOTAL,
        sum(r.files for r in rows),
        windows,
        {n: total([r.corpus[n] for r in rows], p) for n, p in profiles.items()},
        {n: total([r.held_out[n] for r in rows], p) for n, p in profiles.items()},
    )


def format_categories(rows: Sequence[CategoryResult], *, thresholds: bool = False) -> str:
    """The aligned table: per profile the corpus and held-out scores, then the
    false positives of the standard profile; with ``thresholds``, a second table
    of the held-out thresholds."""
    profiles = list(rows[0].corpus) if rows else list(PROFILES)
    columns = [Column("category", left=True), Column("files"), Column("windows")]
    for name in profiles:
        group = SHORT_PROFILE.get(name, name)
        columns += [Column("corpus", group), Column("held out", group)]
    fp_group = "FP, " + SHORT_PROFILE.get("standard", "standard")
    columns += [Column("corpus", fp_group), Column("held out", fp_group)]
    body: list[list[str]] = []
    for r in rows:
        cells = [r.category, str(r.files), str(r.windows)]
        for name in profiles:
            cells.append(score_text(r.corpus[name].normalised))
            cells.append(score_text(r.held_out[name].normalised))
        std = profiles[0] if "standard" not in profiles else "standard"
        cells += [str(r.corpus[std].fp), str(r.held_out[std].fp)]
        body.append(cells)
    lines = [
        "NAB score per category, normalised over the category's own windows",
        "  corpus:   at the corpus-wide best threshold of the profile",
        "  held out: at the best threshold of all the other categories (leave one out)",
        "",
        render(columns, body, rule_before=len(body) - 1),
    ]
    if thresholds:
        tcols = [Column("held-out threshold", left=True)]
        tcols += [Column(SHORT_PROFILE.get(n, n)) for n in profiles]
        tbody = [
            [r.category, *(threshold_text(r.held_out[n].threshold) for n in profiles)]
            for r in rows
            if r.category != TOTAL
        ]
        corpus_row = [
            "(corpus-wide)",
            *(threshold_text(rows[-1].corpus[n].threshold) for n in profiles),
        ]
        lines += ["", render(tcols, [*tbody, corpus_row], rule_before=len(tbody))]
    return "\n".join(lines)
