"""Dependencies of the routes that hand out or take signed URLs (links, feeds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.oncall.links.keys import derived_key, public_base


@dataclass(frozen=True)
class UrlKeys:
    """The links and feeds keys (None without a plugin secret) and the public address."""

    links: bytes | None = field(repr=False)
    feeds: bytes | None = field(repr=False)
    base: str


def url_keys(request: Request) -> UrlKeys:
    settings = request.app.state.settings
    return UrlKeys(
        links=derived_key(settings, "links"),
        feeds=derived_key(settings, "feeds"),
        base=public_base(settings, str(request.base_url)),
    )


Keys = Annotated[UrlKeys, Depends(url_keys)]
