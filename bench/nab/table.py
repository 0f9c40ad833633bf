"""Aligned text tables, and the every-algorithm table (``--algorithm all``).

Pure formatting: plain values in, text out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.nab.scorer import CorpusResult

#: The profile names as the issue and the README write them.
SHORT_PROFILE = {
    "standard": "standard",
    "reward_low_FP_rate": "low-FP",
    "reward_low_FN_rate": "low-FN",
}


@dataclass(frozen=True)
class Column:
    """A column: its header, the group header above it (optional), its alignment."""

    header: str
    group: str = ""
    left: bool = False


def score_text(value: float) -> str:
    """A normalised score with one decimal, or ``-`` when there is none (NaN)."""
    if math.isnan(value):
        return "-"
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text  # a score a hair below 0 is not "minus zero"


def threshold_text(value: float) -> str:
    """A threshold with 6 decimals, or as many more as it takes (up to 12) not to
    print a threshold below 1 as ``1.000000`` (non-saturating score maps put
    the best thresholds within 1e-6 of 1)."""
    for digits in range(6, 13):
        text = f"{value:.{digits}f}"
        if value >= 1.0 or float(text) < 1.0:
            return text
    return f"{value:.12f}"


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], rule_before: int = -1) -> str:
    """Rows under their headers, each column as wide as its widest cell.

    Consecutive columns with the same non-empty ``group`` get the group name
    centred over them on a first header line. ``rule_before``: index of a row
    (e.g. a totals row) to draw a rule above; -1 for none.
    """
    widths = [len(c.header) for c in columns]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells for {len(columns)} columns")
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    spans: list[tuple[str, int, int]] = []  # group, first column, last column
    for i, column in enumerate(columns):
        if column.group and spans and spans[-1][0] == column.group and spans[-1][2] == i - 1:
            spans[-1] = (column.group, spans[-1][1], i)
        elif column.group:
            spans.append((column.group, i, i))
    for group, first, last in spans:  # widen a span too narrow for its group name
        span_width = sum(widths[first : last + 1]) + 2 * (last - first)
        if len(group) > span_width:
            widths[last] += len(group) - span_width

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(w) if column.left else cell.rjust(w)
            for cell, w, column in zip(cells, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out: list[str] = []
    if spans:
        group_line = ""
        for group, first, last in spans:
            start = sum(widths[:first]) + 2 * first
            span_width = sum(widths[first : last + 1]) + 2 * (last - first)
            group_line = group_line.ljust(start) + group.center(span_width).rstrip()
        out.append(group_line.rstrip())
    out.append(line([c.header for c in columns]))
    for i, row in enumerate(rows):
        if i == rule_before:
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        out.append(line(row))
    return "\n".join(out)


@dataclass(frozen=True)
class AlgorithmRow:
    """One algorithm on the corpus: its result, or why it has none."""

    algorithm: str
    result: CorpusResult | None
    points_per_second: float = math.nan  # scoring only, one core, batches of 1,000
    note: str = ""  # why there is no result (parameters required, failure)


def ranked(rows: Sequence[AlgorithmRow], first: str = "auto") -> list[AlgorithmRow]:
    """``first`` on top, then by standard score (best first), rows without a result last."""

    def key(row: AlgorithmRow) -> tuple[int, float, str]:
        if row.algorithm == first:
            return (0, 0.0, "")
        if row.result is None:
            return (2, 0.0, row.algorithm)
        return (1, -row.result["standard"].normalised, row.algorithm)

    return sorted(rows, key=key)


def format_algorithms(rows: Sequence[AlgorithmRow], first: str = "auto") -> str:
    """The algorithm x profile table: normalised score and best threshold per
    profile (``never`` when the best is to fire on no row), and the scoring
    rate; ``first`` on top, then best standard first."""
    profiles = list(SHORT_PROFILE)
    columns = [Column("algorithm", left=True)]
    for name in profiles:
        columns += [Column("score", SHORT_PROFILE[name]), Column("threshold", SHORT_PROFILE[name])]
    columns.append(Column("points/s"))
    body: list[list[str]] = []
    notes: list[str] = []
    for row in ranked(rows, first):
        if row.result is None:
            body.append([row.algorithm, *(["-"] * (2 * len(profiles))), "-"])
            notes.append(f"  {row.algorithm}: {row.note}")
            continue
        cells = [row.algorithm]
        for name in profiles:
            r = row.result[name]
            fires = r.tp + r.fp > 0
            cells += [score_text(r.normalised), threshold_text(r.threshold) if fires else "never"]
        rate = row.points_per_second
        cells.append("-" if math.isnan(rate) else f"{rate:,.0f}")
        body.append(cells)
    text = render(columns, body)
    if notes:
        text += "\nnot scored:\n" + "\n".join(notes)
    return text
