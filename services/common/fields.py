"""JSON-schema helpers for request models shared by both services."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def _without_null(schema: dict[str, Any]) -> None:
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [branch for branch in branches if branch.get("type") != "null"]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if "default" in schema and schema["default"] is None:
        del schema["default"]


def omittable(**kwargs: Any) -> Any:
    """A PATCH field that may be left out (unchanged) but not sent as null (the service
    answers 422 "may not be null"): ``None`` in Python means left out, and the OpenAPI
    documents do not offer null."""
    extra = kwargs.pop("json_schema_extra", None)

    def schema(json_schema: dict[str, Any]) -> None:
        _without_null(json_schema)
        if extra is not None:
            extra(json_schema)

    return Field(default=None, json_schema_extra=schema, **kwargs)
