"""Wording shared by the detectors' explanations."""

from __future__ import annotations

import math


def fmt(value: float) -> str:
    """Compact number for explanations."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.4g}"


def learning_sentence(label: str, warmup: int) -> str:
    return f"{label}: still learning (scores start after {warmup} points)."
