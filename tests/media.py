"""Content-Types for the JSON-only rule (SPEC: a JSON body needs ``Content-Type:
application/json``, 415 otherwise): the ones refused, the ones taken, and the check
of a 415 answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

# the same JSON bytes are sent with each: only the header decides
NOT_JSON: list[dict[str, str]] = [
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/xml"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {},  # none at all
]
JSON: list[dict[str, str]] = [
    {"Content-Type": "application/json"},
    {"Content-Type": "application/json; charset=utf-8"},
]


def check_415(response: httpx.Response, given: str | None) -> None:
    """A 415 in the error envelope naming the Content-Type it was given."""
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]
    assert error["details"]["content_type"] == given


def chunked(content: bytes) -> AsyncIterator[bytes]:
    """The body sent without a Content-Length (Transfer-Encoding: chunked)."""

    async def chunks() -> AsyncIterator[bytes]:
        yield content[:10]
        yield content[10:]

    return chunks()
