"""The body of ``POST /api/v1/ingest``: one point or ``{"points": [...]}``, checked whole."""

from __future__ import annotations

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from services.anomaly.ingest.models import MAX_BATCH, PointIn
from services.common.errors import BadRequest, PayloadTooLarge, ValidationFailed, invalid_field

_POINTS = TypeAdapter(list[PointIn])


def parse_ingest(body: bytes) -> tuple[list[PointIn], bool]:
    """One point or ``{"points": [...]}``: (points, is_batch).

    400 for a body that is not JSON, 413 past the batch limit (before any point
    is looked at), 422 naming the first bad field (``points.3.value``).
    """
    try:
        document = pydantic_core.from_json(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if isinstance(document, dict) and "points" in document:
        raw = document["points"]
        extra = sorted(set(document) - {"points"})
        if extra:
            raise invalid_field(extra[0], 'unexpected field (send a point or {"points": [...]})')
        if not isinstance(raw, list):
            raise invalid_field("points", "must be a list of points")
        if len(raw) > MAX_BATCH:
            raise PayloadTooLarge(
                f"{len(raw)} points in one batch; at most {MAX_BATCH}",
                details={"points": len(raw), "max": MAX_BATCH},
            )
        try:
            return _POINTS.validate_python(raw), True
        except ValidationError as exc:
            raise _point_error(exc, prefix=["points"]) from None
    if not isinstance(document, dict):
        raise invalid_field(
            "body", 'expected a point {"detector_id","value","timestamp"} or {"points": [...]}'
        )
    try:
        return [PointIn.model_validate(document)], False
    except ValidationError as exc:
        raise _point_error(exc, prefix=[]) from None


def _point_error(exc: ValidationError, *, prefix: list[str]) -> ValidationFailed:
    details = [
        {
            "loc": ["body", *prefix, *(str(p) for p in e.get("loc", ()))],
            "message": str(e.get("msg", "invalid")),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    where = ".".join(details[0]["loc"][1:]) or "body"
    return ValidationFailed(f"{where}: {details[0]['message']}", details=details)
