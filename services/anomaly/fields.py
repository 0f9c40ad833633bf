"""Field types shared by the nself-anomaly API models (pydantic v2).

Timestamps are ``services.common.instants.Instant`` (RFC 3339 with an offset,
1970 to 2200). Values are finite JSON numbers (no strings, no NaN/Infinity).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Value = Annotated[
    float,
    Field(strict=True, allow_inf_nan=False, description="a finite number", examples=[42.5]),
]
Status = Literal["learning", "active", "disabled"]
Severity = Literal["warning", "critical"]
FeedbackStatus = Literal["open", "confirmed", "false_positive", "resolved"]

TS_EXAMPLE = "2026-11-23T09:00:00Z"


class Strict(BaseModel):
    """A request model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
