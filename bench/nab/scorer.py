"""The project's own NAB (Numenta Anomaly Benchmark) scorer.

Written from the published facts of NAB's scoring (see the corpus README):

* the first ``min(floor(0.15 * n), 750)`` rows of a file (the probationary
  period) are not scored;
* a threshold turns per-row anomaly scores into detections
  (``score >= threshold``);
* inside an anomaly window only the first detection counts and earns
  ``tp * S(y) / S(-1)`` with ``y = -(right - i + 1) / width`` and the scaled
  sigmoid ``S(y) = 2 / (1 + exp(5 y)) - 1`` (``S(y) = -1`` for ``y > 3``);
  a window without any detection costs ``-fn``;
* a detection outside every window costs ``-fp`` when no window came before it
  in the file, otherwise ``fp * S(y)`` with
  ``y = (i - prev_right) / (prev_width - 1)`` (small right after a window);
* the raw score is the sum over files; it is normalised as
  ``100 * (raw - null) / (perfect - null)`` where ``null`` is ``-fn`` per
  window and ``perfect`` is ``tp`` per window;
* the threshold is the best one per profile, chosen over the whole corpus.

The module is pure (no I/O): callers load the CSV files and the label JSON and
hand over arrays. Time stamps may be ``datetime64`` values or floats, as long
as the window edges use the same kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PROFILES",
    "CorpusResult",
    "FileCase",
    "FileResult",
    "Profile",
    "ProfileResult",
    "best_threshold",
    "evaluate_corpus",
    "normalise",
    "probationary_period",
    "scaled_sigmoid",
    "score_file",
    "windows_from_labels",
    "windows_to_indices",
]

#: Fraction of a file (capped at 15 % of 5,000 rows) that is never scored.
PROBATIONARY_FRACTION = 0.15
PROBATIONARY_CAP_ROWS = 5000
#: Window size, as a fraction of the file, shared by a file's labelled instants.
WINDOW_FRACTION = 0.10


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB application profile.

    Parameters
    ----------
    name : str
        Profile name as NAB spells it.
    tp : float
        Weight of a true positive (first detection in a window).
    fn : float
        Cost of a window with no detection.
    fp : float
        Cost of a false positive (detection outside every window).
    """

    name: str
    tp: float
    fn: float
    fp: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp=1.0, fn=1.0, fp=0.11),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", tp=1.0, fn=1.0, fp=0.22),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", tp=1.0, fn=2.0, fp=0.11),
}


def probationary_period(n: int) -> int:
    """Number of leading rows of an ``n``-row file that are not scored.

    Parameters
    ----------
    n : int
        Rows in the file.

    Returns
    -------
    int
        ``min(floor(0.15 * n), floor(0.15 * 5000))``.

    Examples
    --------
    >>> probationary_period(4032), probationary_period(22695)
    (604, 750)
    """
    return int(
        min(np.floor(PROBATIONARY_FRACTION * n), PROBATIONARY_FRACTION * PROBATIONARY_CAP_ROWS)
    )


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid ``2 / (1 + exp(5 y)) - 1``, and -1 for ``y > 3``.

    Parameters
    ----------
    y : array_like
        Relative position (negative inside a window, positive after it).

    Returns
    -------
    numpy.ndarray
        Values in [-1, 1]; ``S(-1) ~ 0.9866``, ``S(0) = 0``.
    """
    ya = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * ya)) - 1.0
    return np.where(ya > 3.0, -1.0, out)


_S_MINUS_1 = float(scaled_sigmoid(-1.0))


def windows_to_indices(
    timestamps: np.ndarray, windows: Iterable[Sequence[object]]
) -> list[tuple[int, int]]:
    """Turn ``[start, end]`` windows into inclusive row index pairs.

    A window covers the rows whose time stamp lies in ``[start, end]``; a
    window that covers no row is dropped.

    Parameters
    ----------
    timestamps : numpy.ndarray
        Sorted row time stamps (``datetime64`` or float).
    windows : iterable of (start, end)
        Window edges, as strings (ISO, parsed as ``datetime64``) or values of
        the same kind as ``timestamps``.

    Returns
    -------
    list of (int, int)
        ``(left, right)`` row indices, both included, in time order.
    """
    ts = np.asarray(timestamps)
    out: list[tuple[int, int]] = []
    for start, end in windows:
        lo, hi = _as_time(start, ts), _as_time(end, ts)
        left = int(np.searchsorted(ts, lo, side="left"))
        right = int(np.searchsorted(ts, hi, side="right")) - 1
        if right >= left:
            out.append((left, right))
    out.sort()
    return out


def _as_time(value: object, like: np.ndarray) -> object:
    if np.issubdtype(like.dtype, np.datetime64) and isinstance(value, str):
        return np.datetime64(value.replace(" ", "T")).astype(like.dtype)
    return value


def windows_from_labels(n: int, anomaly_rows: Sequence[int]) -> list[tuple[int, int]]:
    """Windows for a corpus labelled with instants only (NAB's labeller rule).

    Each labelled row gets a window centred on it of ``int(0.10 * n / k)``
    rows (``k`` labelled instants in the file), clipped to the file;
    overlapping windows merge.

    Parameters
    ----------
    n : int
        Rows in the file.
    anomaly_rows : sequence of int
        Row indices of the labelled anomalies.

    Returns
    -------
    list of (int, int)
        Merged ``(left, right)`` row indices, both included.
    """
    rows = sorted(int(r) for r in anomaly_rows)
    if not rows or n <= 0:
        return []
    half = int(WINDOW_FRACTION * n / len(rows)) // 2
    merged: list[tuple[int, int]] = []
    for r in rows:
        left, right = max(r - half, 0), min(r + half, n - 1)
        if merged and left <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], right))
        else:
            merged.append((left, right))
    return merged


@dataclass(frozen=True)
class FileCase:
    """One file's scoring geometry, independent of the detector and profile.

    Parameters
    ----------
    name : str
        Key of the file (``<category>/<file>.csv``).
    n : int
        Rows in the file.
    windows : list of (int, int)
        Inclusive row index pairs of its anomaly windows, sorted, disjoint.
    """

    name: str
    n: int
    windows: list[tuple[int, int]]
    # per-row: window index or -1, and the unweighted value of a detection there
    # (S(y)/S(-1) in a window, -1 or S(y) after one); probationary rows have window -2.
    window_of: np.ndarray = field(init=False, repr=False, compare=False)
    unit: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wins = sorted((int(a), int(b)) for a, b in self.windows)
        for (_, r0), (l1, _) in zip(wins, wins[1:], strict=False):
            if l1 <= r0:
                raise ValueError(f"{self.name}: windows overlap")
        object.__setattr__(self, "windows", wins)
        n = int(self.n)
        idx = np.arange(n, dtype=np.float64)
        window_of = np.full(n, -1, dtype=np.int64)
        unit = np.full(n, -1.0)  # no window before: a false positive costs fp
        for k, (left, right) in enumerate(wins):
            width = right - left + 1
            window_of[left : right + 1] = k
            unit[left : right + 1] = (
                scaled_sigmoid(-(right - idx[left : right + 1] + 1.0) / width) / _S_MINUS_1
            )
            after_end = wins[k + 1][0] if k + 1 < len(wins) else n
            if right + 1 < after_end:
                past = idx[right + 1 : after_end] - right
                # a one-row window has no width to scale by: anything after it is a plain FP
                unit[right + 1 : after_end] = (
                    scaled_sigmoid(past / (width - 1)) if width > 1 else -1.0
                )
        window_of[: probationary_period(n)] = -2
        object.__setattr__(self, "window_of", window_of)
        object.__setattr__(self, "unit", unit)


@dataclass(frozen=True)
class FileResult:
    """Score of one file at one threshold under one profile."""

    name: str
    raw: float
    tp: int
    fp: int
    fn: int


def score_file(
    case: FileCase, scores: np.ndarray, threshold: float, profile: Profile
) -> FileResult:
    """Raw NAB score of one file at a fixed threshold.

    Parameters
    ----------
    case : FileCase
        The file's windows and length.
    scores : numpy.ndarray
        Anomaly score of every row, in [0, 1].
    threshold : float
        A row is a detection when its score is ``>= threshold``.
    profile : Profile
        Weights to apply.

    Returns
    -------
    FileResult
        Raw score and counts of true positives (windows detected), false
        positives (detections outside windows) and false negatives (windows
        missed).
    """
    s = _check_scores(case, scores)
    hit = s >= threshold
    raw, tp, fn = 0.0, 0, 0
    for k, (left, right) in enumerate(case.windows):
        rows = np.flatnonzero(hit[left : right + 1] & (case.window_of[left : right + 1] == k))
        if rows.size:
            raw += profile.tp * float(case.unit[left + rows[0]])
            tp += 1
        else:
            raw -= profile.fn
            fn += 1
    fps = hit & (case.window_of == -1)
    raw += profile.fp * float(case.unit[fps].sum())
    return FileResult(case.name, raw, tp, int(fps.sum()), fn)


def _check_scores(case: FileCase, scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != case.n:
        raise ValueError(f"{case.name}: {s.shape[0]} scores for {case.n} rows")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{case.name}: scores must be finite")
    return s


def _events(
    cases: Sequence[FileCase], scores: Sequence[np.ndarray], profile: Profile
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row changes of the corpus raw score as the threshold falls past each row."""
    keys: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    for case, sc in zip(cases, scores, strict=True):
        s = _check_scores(case, sc)
        fp_rows = case.window_of == -1
        keys.append(s[fp_rows])
        deltas.append(profile.fp * case.unit[fp_rows])
        for k, (left, right) in enumerate(case.windows):
            rows = np.flatnonzero(case.window_of[left : right + 1] == k) + left
            if rows.size == 0:
                continue
            order = rows[np.argsort(-s[rows], kind="stable")]
            first = np.minimum.accumulate(order)  # earliest detection so far
            value = profile.tp * case.unit[first]
            keys.append(s[order])
            deltas.append(np.diff(value, prepend=-profile.fn))
    if not keys:
        return np.empty(0), np.empty(0)
    return np.concatenate(keys), np.concatenate(deltas)


def best_threshold(
    cases: Sequence[FileCase], scores: Sequence[np.ndarray], profile: Profile
) -> tuple[float, float]:
    """The threshold that maximises the corpus raw score, by one sorted sweep.

    Every distinct score value is a candidate (``score >= threshold`` detects),
    plus "never fire" (a threshold above every score). Cost: one sort of the
    scored rows.

    Parameters
    ----------
    cases : sequence of FileCase
        The files.
    scores : sequence of numpy.ndarray
        Per-row scores of each file, in the same order.
    profile : Profile
        Weights to apply.

    Returns
    -------
    (float, float)
        The best threshold and the corpus raw score it gives. Ties go to the
        highest threshold.
    """
    base = -profile.fn * sum(len(c.windows) for c in cases)
    key, delta = _events(cases, scores, profile)
    never = float(
        np.nextafter(max((float(np.max(s)) for s in scores if len(s)), default=1.0), np.inf)
    )
    if key.size == 0:
        return never, base
    order = np.argsort(-key, kind="stable")
    key, delta = key[order], delta[order]
    total = base + np.cumsum(delta)
    last_of_group = np.flatnonzero(np.append(key[1:] != key[:-1], True))
    candidates = total[last_of_group]
    i = int(np.argmax(candidates))  # first max = highest threshold
    if candidates[i] <= base:
        return never, base
    return float(key[last_of_group[i]]), float(candidates[i])


def normalise(raw: float, n_windows: int, profile: Profile) -> float:
    """NAB's normalised score ``100 * (raw - null) / (perfect - null)``.

    Parameters
    ----------
    raw : float
        Corpus raw score.
    n_windows : int
        Windows in the corpus.
    profile : Profile
        Weights used for ``raw``.

    Returns
    -------
    float
        0 for a detector that never fires, 100 for a perfect one (NaN when the
        corpus has no window).
    """
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    if perfect == null:
        return float("nan")
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class ProfileResult:
    """Corpus result of one profile at its best threshold."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    tp: int
    fp: int
    fn: int
    files: list[FileResult]


@dataclass(frozen=True)
class CorpusResult:
    """Results of every profile."""

    profiles: dict[str, ProfileResult]

    def __getitem__(self, name: str) -> ProfileResult:
        return self.profiles[name]


def evaluate_corpus(
    cases: Sequence[FileCase],
    scores: Sequence[np.ndarray],
    profiles: Mapping[str, Profile] | None = None,
) -> CorpusResult:
    """Score a corpus under each profile at that profile's best threshold.

    Parameters
    ----------
    cases : sequence of FileCase
        The files.
    scores : sequence of numpy.ndarray
        Per-row scores of each file, in the same order.
    profiles : mapping, optional
        Profiles to evaluate (default: NAB's three).

    Returns
    -------
    CorpusResult
        Per profile: threshold, raw and normalised score, counts and per-file
        results.
    """
    n_windows = sum(len(c.windows) for c in cases)
    out: dict[str, ProfileResult] = {}
    for name, profile in (profiles or PROFILES).items():
        threshold, raw = best_threshold(cases, scores, profile)
        files = [score_file(c, s, threshold, profile) for c, s in zip(cases, scores, strict=True)]
        out[name] = ProfileResult(
            profile=name,
            threshold=threshold,
            raw=raw,
            normalised=normalise(raw, n_windows, profile),
            tp=sum(f.tp for f in files),
            fp=sum(f.fp for f in files),
            fn=sum(f.fn for f in files),
            files=files,
        )
    return CorpusResult(out)
