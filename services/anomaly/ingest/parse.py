"""The body of ``POST /api/v1/ingest``: one point or ``{"points": [...]}``, checked whole.

One validation, straight from the JSON bytes: an object with a ``points`` key
is a batch, anything else a single point (a callable discriminator, so only
the chosen model validates). Its errors are then worded for the client.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from services.anomaly.ingest.models import MAX_BATCH, BatchIn, PointIn
from services.common.errors import (
    ApiError,
    BadRequest,
    PayloadTooLarge,
    ValidationFailed,
    error_details,
    invalid_field,
)


def _shape(document: Any) -> str:
    return "batch" if isinstance(document, dict) and "points" in document else "point"


_BODY: TypeAdapter[PointIn | BatchIn] = TypeAdapter(
    Annotated[
        Annotated[PointIn, Tag("point")] | Annotated[BatchIn, Tag("batch")],
        Discriminator(_shape),
    ]
)


def parse_ingest(body: bytes) -> tuple[list[PointIn], bool]:
    """One point or ``{"points": [...]}``: (points, is_batch).

    400 for a body that is not JSON, 413 past the batch limit, 422 naming the
    first bad field (``points.3.value``).
    """
    try:
        parsed = _BODY.validate_json(body or b"null")
    except ValidationError as exc:
        raise _refusal(exc) from None
    if isinstance(parsed, BatchIn):
        return parsed.points, True
    return [parsed], False


def _refusal(exc: ValidationError) -> ApiError:
    errors = exc.errors()
    for e in errors:
        kind, loc = e["type"], e["loc"]
        if kind == "json_invalid":
            reason = (e.get("ctx") or {}).get("error", e["msg"])
            return BadRequest(f"body is not valid JSON: {reason}")
        if kind == "too_long" and loc == ("batch", "points"):
            count = (e.get("ctx") or {}).get("actual_length")
            return PayloadTooLarge(
                f"{count} points in one batch; at most {MAX_BATCH}",
                details={"points": count, "max": MAX_BATCH},
            )
    first = errors[0]
    if first["loc"] == ("point",):
        return invalid_field(
            "body", 'expected a point {"detector_id","value","timestamp"} or {"points": [...]}'
        )
    if first["type"] == "extra_forbidden" and first["loc"][0] == "batch" and len(first["loc"]) == 2:
        return invalid_field(
            str(first["loc"][1]), 'unexpected field (send a point or {"points": [...]})'
        )
    if first["loc"] == ("batch", "points"):
        return invalid_field("points", "must be a list of points")
    details = error_details(errors, head=("body",), drop=1)  # drop the point/batch tag
    where = ".".join(details[0]["loc"][1:]) or "body"
    return ValidationFailed(f"{where}: {details[0]['message']}", details=details)
