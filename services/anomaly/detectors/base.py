"""The one interface every detector implements.

A detector is a streaming model of one series. It is configured by its
parameters only (validated by its ``Params`` pydantic model), keeps its
streaming state in plain JSON-able values, and scores points causally: the
score of a point depends only on that point and the points before it.

Two paths give the same numbers:

* ``score(timestamps, values)``: vectorised over a batch (numpy arrays).
* ``score_one(timestamp, value)``: one point, for streaming callers.

Both update the model unless ``learn=False`` (used for late points, which are
scored against the current model without changing it).

Per point a detector emits ``score`` in [0, 1] (monotone in surprise, 0 during
warm-up), ``expected``, ``lower`` and ``upper`` (the band it considers
normal; NaN when it has no opinion yet) and, through ``explain``, a
one-sentence explanation.

A detector also says when it is still *learning* (``is_learning`` now, and
``Scores.learning`` per point: whether it was still learning when it scored
that point). The threshold policy never makes a learning point critical and
never pages for it (a static bound excepted), and the detector API shows the
status ``learning``. The default is the warm-up rule: the first ``warmup``
points learned are learning points, filled in by ``score`` for every
algorithm. A detector with another rule (``auto``: its first seasonal cycle,
in time) overrides ``is_learning`` and fills ``Scores.learning`` itself, both
from the same rule.

Pure: no I/O, no clock reads. Timestamps are float seconds since the epoch,
strictly increasing within a learning batch. Values must be finite:
``InvalidInput`` is raised for NaN or infinity (the service validates before
scoring, so this is a programming error there).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .state import INT, Codec


class InvalidParams(ValueError):
    """Parameters a detector refuses; ``field`` names the offending one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def params_error(exc: ValidationError) -> InvalidParams:
    """The first error of a parameter model as ``InvalidParams``.

    A validator spanning several fields names the offending one by raising
    ``InvalidParams(field, message)`` itself (pydantic would report no field).
    """
    first = exc.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidParams):
        return InvalidParams(cause.field, cause.message)
    field = ".".join(str(p) for p in first.get("loc", ())) or "params"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return InvalidParams(field, message)


class InvalidInput(ValueError):
    """Input a detector cannot score (non-finite values, unsorted timestamps)."""


class DetectorParams(BaseModel):
    """Base of every detector's parameter model: unknown keys and non-finite
    numbers are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Scores:
    """Per-point results of a batch, all arrays of the batch's length."""

    score: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    # optional per-point figure the explanation uses (run length, gap seconds, ...)
    detail: np.ndarray | None = None
    # optional per point: True where the detector was still learning when it scored
    # the point (``auto``: its first season); None: not said, and ``Detector.score``
    # fills the warm-up rule in
    learning: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def point(self, i: int) -> PointScore:
        return PointScore(
            score=float(self.score[i]),
            expected=float(self.expected[i]),
            lower=float(self.lower[i]),
            upper=float(self.upper[i]),
            detail=None if self.detail is None else float(self.detail[i]),
            learning=False if self.learning is None else bool(self.learning[i]),
        )


@dataclass(frozen=True)
class PointScore:
    score: float
    expected: float
    lower: float
    upper: float
    detail: float | None = None
    learning: bool = False


def warmup_learning(seen_before: int, n: int, learn: bool, warmup: int) -> np.ndarray:
    """The default learning rule for ``n`` points scored after ``seen_before`` were
    learned: the first ``warmup`` points learned are learning points (a point scored
    without learning is a learning point while the model is)."""
    if learn:
        return np.arange(seen_before, seen_before + n) < warmup
    return np.full(n, seen_before < warmup)


class Detector(ABC):
    """Base class: subclasses set ``name``, ``Params`` and implement the hooks.

    A subclass implements ``reset`` (the fresh state, including ``_count``,
    the points learned), ``_score`` (a validated batch) and ``explain``. Its
    state is declared in ``state_fields`` (JSON name -> codec; the attribute
    is ``_<name>``), from which ``get_state`` and ``set_state`` are derived; a
    state that does not fit overrides both. ``n_seen`` is ``_count``;
    ``warmup`` is the ``warmup`` parameter unless overridden.
    """

    name: ClassVar[str]
    Params: ClassVar[type[DetectorParams]]
    #: The streaming state, in the order of the JSON object.
    state_fields: ClassVar[dict[str, Codec]] = {"count": INT}
    _count: int

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as exc:
            raise params_error(exc) from None
        self.reset()

    # -- configuration -------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    # -- state ---------------------------------------------------------
    @abstractmethod
    def reset(self) -> None:
        """Forget everything learned (fresh state)."""

    def get_state(self) -> dict[str, Any]:
        """JSON-serialisable streaming state (floats, ints, lists, dicts)."""
        return {
            name: codec.dump(getattr(self, "_" + name)) for name, codec in self.state_fields.items()
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state produced by ``get_state`` of the same class and params."""
        for name, codec in self.state_fields.items():
            setattr(self, "_" + name, codec.load(state[name]))

    @property
    def n_seen(self) -> int:
        """Points learned so far (the ``_count`` every detector keeps)."""
        return self._count

    @property
    def warmup(self) -> int:
        """Points needed before scores can be non-zero (default: the ``warmup`` parameter).

        A detector whose parameters have no ``warmup`` overrides this.
        """
        return int(self.params.warmup)  # type: ignore[attr-defined]

    @property
    def is_warm(self) -> bool:
        return self.n_seen >= self.warmup

    @property
    def is_learning(self) -> bool:
        """Still learning (status ``learning``): its points are never critical and never
        page, a static bound excepted.

        Default: until warm (fewer than ``warmup`` points learned). A detector
        overriding this fills ``Scores.learning`` from the same rule.
        """
        return not self.is_warm

    def _seen_before(self, n: int, learn: bool) -> np.ndarray:
        """Points learned before each of ``n`` batch points was scored."""
        if learn:
            return np.arange(self._count, self._count + n)
        return np.full(n, self._count)

    # -- scoring -------------------------------------------------------
    @abstractmethod
    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        """Vectorised scoring of a validated batch."""

    def score(self, timestamps: Any, values: Any, *, learn: bool = True) -> Scores:
        # np.count_nonzero rather than .all()/.any(): the same checks without numpy's
        # Python-level reduction wrappers, which cost more than the kernel for a few points
        ts = np.asarray(timestamps, dtype=np.float64)
        vs = np.asarray(values, dtype=np.float64)
        if ts.ndim != 1:
            ts = ts.reshape(-1)
        if vs.ndim != 1:
            vs = vs.reshape(-1)
        n = vs.shape[0]
        if ts.shape[0] != n:
            raise InvalidInput("timestamps and values differ in length")
        if np.count_nonzero(np.isfinite(vs)) != n:
            raise InvalidInput("values must be finite numbers (no NaN or infinity)")
        if np.count_nonzero(np.isfinite(ts)) != n:
            raise InvalidInput("timestamps must be finite")
        if learn and n > 1 and np.count_nonzero(ts[1:] <= ts[:-1]):
            raise InvalidInput("timestamps must be strictly increasing")
        seen_before = self.n_seen
        result = self._score(ts, vs, learn)
        if result.learning is not None:
            return result
        return Scores(
            result.score,
            result.expected,
            result.lower,
            result.upper,
            result.detail,
            warmup_learning(seen_before, n, learn, self.warmup),
        )

    def score_one(self, timestamp: float, value: float, *, learn: bool = True) -> PointScore:
        return self.score([timestamp], [value], learn=learn).point(0)

    # -- explanation ---------------------------------------------------
    def explain(self, value: float, point: PointScore) -> str:
        """One sentence on why this point scored as it did."""
        if np.isnan(point.expected):
            return f"{self.name}: still learning, no expected value yet."
        where = "within"
        if not np.isnan(point.upper) and value > point.upper:
            where = "above"
        elif not np.isnan(point.lower) and value < point.lower:
            where = "below"
        return (
            f"{self.name}: value {value:.6g} is {where} the expected band "
            f"[{point.lower:.6g}, {point.upper:.6g}] around {point.expected:.6g} "
            f"(score {point.score:.3f})."
        )
