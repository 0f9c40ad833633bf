"""The series part of the points route, kept apart so that multi-series detectors
(labelled series, being added on another branch) can be wired in here alone.

`labels` is a selector written as comma-separated `name=value` pairs
(`host=db1,region=eu`). Today every detector has one series, the empty label set,
so a selector with any pair matches no stored point; once points carry their
series labels, `matches_nothing` gives way to a `labels @> $n` condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
MAX_PAIRS = 32
# the OpenAPI pattern of the parameter: what it admits is parsed without a 422
PATTERN = rf"^({_NAME}=[^,]*(,{_NAME}=[^,]*){{0,{MAX_PAIRS - 1}}})?$"


@dataclass(frozen=True)
class Selector:
    labels: dict[str, str] = field(default_factory=dict)
    contradictory: bool = False  # a name given twice with two values: no series has both


def parse_labels(text: str | None) -> Selector:
    """The selector (the parameter's pattern has been checked by the route)."""
    if not text:
        return Selector()
    labels: dict[str, str] = {}
    contradictory = False
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name in labels and labels[name] != value:
            contradictory = True
        labels.setdefault(name, value)
    return Selector(labels, contradictory)


def matches_nothing(selector: Selector) -> bool:
    """Whether the selector excludes the only series a detector has today (labels {})."""
    return selector.contradictory or bool(selector.labels)
