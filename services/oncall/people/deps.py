"""Dependencies of the people routes: the destination policy contact methods must meet."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.destinations import DestinationPolicy


def destination_policy(request: Request) -> DestinationPolicy:
    """The app's policy for webhook/Slack URLs, built once from the settings."""
    policy = getattr(request.app.state, "destination_policy", None)
    if policy is None:
        settings = request.app.state.settings
        policy = DestinationPolicy.from_settings(
            settings.allowed_destinations, local_mode=settings.nsentry_local_mode
        )
        request.app.state.destination_policy = policy
    return policy


Destinations = Annotated[DestinationPolicy, Depends(destination_policy)]
