"""The ``auto`` detector: parameters and state around the compiled kernel, and its explanations."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..base import Detector, DetectorParams, PointScore, Scores
from ..explain import fmt
from ..scores import KNEE_P, KNEE_SURPRISE, TAIL_POWER, score_from_surprise
from . import layout
from .kernel import kernel, pack
from .layout import S
from .params import (
    ALERT_EXCESS,
    CHANNELS,
    LEVEL,
    LOCAL,
    MEAN,
    MIN_POINTS,
    RECENT,
    SEASONAL,
    AutoParams,
)

__all__ = ["AutoDetector"]

#: Surprise (nats) per unit of excess: the shared score map gives 0.99 at ``ALERT_EXCESS``.
SURPRISE_PER_EXCESS = math.log(100.0) / ALERT_EXCESS


def excess_of_score(score: float) -> float:
    """The excess a score came from (the inverse of the shared map, for explanations)."""
    p = 1.0 - score
    if p >= 1.0:
        return 0.0
    if p >= KNEE_P:
        surprise = -math.log(p)
    else:
        surprise = KNEE_SURPRISE * math.exp((KNEE_P / p) ** (1.0 / TAIL_POWER) - 1.0)
    return surprise / SURPRISE_PER_EXCESS


class AutoDetector(Detector):
    """Default ensemble: new extremes of the long history, local robust deviations, seasons.

    Parameters: :class:`.params.AutoParams` (every length is a duration in
    seconds; the defaults and what each does are in its field descriptions
    and in docs/detectors.md, "auto").

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(11)
    >>> values = 50.0 + rng.normal(0.0, 2.0, 3000)
    >>> values[2500] = 75.0
    >>> detector = AutoDetector()
    >>> scores = detector.score(np.arange(3000) * 60.0, values)
    >>> bool(scores.score[2500] > 0.99), bool(np.mean(scores.score[1500:2500] > 0.99) < 0.01)
    (True, True)
    >>> detector.explain(75.0, scores.point(2500)).split(":")[0]
    'auto (level)'
    """

    name: ClassVar[str] = "auto"
    Params: ClassVar[type[DetectorParams]] = AutoParams
    params: AutoParams

    def reset(self) -> None:
        self._state = layout.fresh()
        self._packed = pack(self.params)
        self._count = 0
        self._learning = True

    def get_state(self) -> dict[str, Any]:
        return {"learning": self._learning, **layout.to_json(self._state)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._state = layout.from_json(state)
        self._count = int(self._state["s"][S["count"]])
        self._learning = bool(state["learning"])

    @property
    def warmup(self) -> int:
        """Points needed before any score (the time-based warm-up comes on top)."""
        return MIN_POINTS

    @property
    def is_warm(self) -> bool:
        s = self._state["s"]
        return bool(
            self._count >= MIN_POINTS
            and s[S["step"]] > 0.0
            and s[S["t_last"]] - s[S["t_first"]] >= self.params.warmup_seconds
        )

    @property
    def is_learning(self) -> bool:
        """Still learning its first season (no critical severity, no page): time-based."""
        return self._learning

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        out = np.empty((6, n))
        st = self._state
        if n:
            kernel(
                timestamps, values, learn, self._packed, st["s"], st["iv"], st["ring"],
                st["srt"], st["tail"], st["short_ring"], st["short_srt"], st["blk"],
                st["hist"], st["slot_v"], st["slot_k"], st["week_v"], st["week_k"], st["al_t"],
                st["al_e"], out,
            )  # fmt: skip
        if learn and n:
            self._count += n
            self._learning = bool(out[5, -1])
        score = score_from_surprise(out[0] * SURPRISE_PER_EXCESS)
        return Scores(score, out[2], out[3], out[4], out[1], learning=out[5] > 0.5)

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.upper):
            return (
                f"auto: still learning (scores start after {MIN_POINTS} points and "
                f"{fmt(self.params.warmup_seconds / 3600.0)} hours)."
            )
        code = int(point.detail or 0)
        if code == 0 or point.score <= 0.0:
            return (
                f"auto: value {fmt(value)} is within what this series has shown "
                f"({fmt(point.lower)}–{fmt(point.upper)}); score {_score_text(point.score)}."
            )
        excess = excess_of_score(point.score)
        what = {
            LEVEL: f"value {fmt(value)} breaks the range of its history",
            MEAN: f"the mean of the latest {self.params.mean_window} points left the range "
            "it kept recently",
            SEASONAL: "the change from the same time one season ago is larger than any "
            "seen recently",
            RECENT: f"value {fmt(value)} is outside its recent range",
            LOCAL: f"value {fmt(value)} is far from the trailing median {fmt(point.expected)} "
            "for this series",
        }[code]
        return (
            f"auto ({CHANNELS[code]}): {what} (normal {fmt(point.lower)}–{fmt(point.upper)}), "
            f"by {excess:.3g} noise units; score {_score_text(point.score)}."
        )


def warm_up() -> None:
    """Compile the kernel (or load it from numba's cache) before the first real batch."""
    AutoDetector().score(np.arange(MIN_POINTS + 2) * 60.0, np.zeros(MIN_POINTS + 2))


def _score_text(score: float) -> str:
    """A score with the digits that tell it from 1 (scores never reach 1)."""
    return f"{score:.3f}" if score < 0.999 else f"{score:.6f}"
