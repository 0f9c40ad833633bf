"""Dependencies of the alert routes: who acknowledges or resolves, and the list filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from services.common.auth import Caller
from services.oncall.alerts.models import Status


async def _actor(caller: Caller) -> str:
    return caller.user_id or f"role:{caller.role}"


Actor = Annotated[str, Depends(_actor)]
StatusFilter = Annotated[Status | None, Query()]
PolicyFilter = Annotated[str | None, Query()]
