"""Detectors that score each point against a window of the latest points.

:class:`WindowDetector` keeps the state such detectors share (a count and the
latest ``history_length`` points) and does the scoring around the window
statistic: each subclass only computes, from the windows ending at the batch
points, the statistic and the band (:meth:`WindowDetector._score_windows`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np

from .base import Detector, Scores
from .scores import empty_scores, fill_z
from .state import FLOAT_ARRAY, INT, Codec


def windows_ending_at(
    history: np.ndarray, values: np.ndarray, length: int, *, learn: bool
) -> tuple[np.ndarray, int]:
    """Windows of ``length`` points ending at (and including) each batch point.

    ``history`` holds the latest points already learned (oldest first). When
    learning, the batch extends the history, so point ``i`` sees the batch
    points before it; otherwise every point is placed alone right after the
    history. Returns ``(windows, first)``: ``windows[j]`` belongs to batch
    point ``first + j`` (earlier points have too little history).
    """
    n = values.shape[0]
    if learn:
        seq = np.concatenate((history, values))
        first = max(0, length - 1 - history.shape[0])
        if n == 0 or first >= n:
            return np.empty((0, length)), n
        view = np.lib.stride_tricks.sliding_window_view(seq, length)
        offset = history.shape[0] - length + 1
        return view[offset + first : offset + n], first
    if history.shape[0] < length - 1 or n == 0:
        return np.empty((0, length)), n
    windows = np.empty((n, length), dtype=np.float64)
    if length > 1:
        windows[:, :-1] = history[history.shape[0] - (length - 1) :]
    windows[:, -1] = values
    return windows, 0


def updated_tail(history: np.ndarray, values: np.ndarray, keep: int) -> np.ndarray:
    """The last ``keep`` points of history followed by the batch."""
    if keep <= 0:
        return np.empty(0)
    return np.concatenate((history, values))[-keep:]


class Band(NamedTuple):
    """A window statistic at the scored points: z, the band's centre and half-widths."""

    z: np.ndarray
    center: np.ndarray
    down: np.ndarray  # scale below the centre (and above, without ``up``)
    up: np.ndarray | None = None
    detail: np.ndarray | None = None  # what the explanation uses (default: z)


class WindowDetector(Detector):
    """Base of detectors that compare each point with the latest points.

    State: a count and the latest ``history_length`` points. Subclasses
    define ``history_length`` and :meth:`_score_windows`, which turns the
    windows of ``window_length`` points ending at the scored points into a
    :class:`Band`; the score is its two-sided normal score on the shared scale
    (:func:`~.scores.two_sided_score`, ranked beyond 0.9999). The warm-up is
    ``history_length`` points unless overridden.
    """

    state_fields: ClassVar[dict[str, Codec]] = {"count": INT, "tail": FLOAT_ARRAY}
    _tail: np.ndarray

    @property
    @abstractmethod
    def history_length(self) -> int:
        """Latest points kept in the state."""

    @property
    def window_length(self) -> int:
        """Points of each window, the scored point last."""
        return self.history_length + 1

    @property
    def warmup(self) -> int:
        return self.history_length

    def reset(self) -> None:
        self._count = 0
        self._tail = np.empty(0)

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        result = empty_scores(values.shape[0], detail=True)
        windows, first = windows_ending_at(self._tail, values, self.window_length, learn=learn)
        if windows.shape[0]:
            fill_z(result, slice(first, None), *self._score_windows(windows))
        if learn:
            self._learn_tail(values)
        return result

    def _score_windows(self, windows: np.ndarray) -> Band:
        """The statistic of each window (one row per scored point, that point last)."""
        raise NotImplementedError(f"{type(self).__name__} scores its windows itself")

    def _learn_tail(self, values: np.ndarray) -> None:
        self._count += int(values.shape[0])
        self._tail = updated_tail(self._tail, values, self.history_length)
