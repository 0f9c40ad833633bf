"""The nself-oncall FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import build_app
from services.common.outage import answer_graphql_outages
from services.common.settings import ONCALL_PORT, Settings, load_settings
from services.oncall.alerts.views import router as alerts_router
from services.oncall.deps import Clock
from services.oncall.graphql.schema import graphql_router
from services.oncall.hasura import router as hasura_router
from services.oncall.integrations.views import router as integrations_router
from services.oncall.links import redact
from services.oncall.links.views import router as links_router
from services.oncall.maintenance.views import router as maintenance_router
from services.oncall.overrides.views import router as overrides_router
from services.oncall.people.views import router as people_router
from services.oncall.policies.views import router as policies_router
from services.oncall.schedules.feed_views import router as feeds_router
from services.oncall.schedules.views import router as schedules_router

PLUGIN = "nself-oncall"
DEFAULT_PORT = ONCALL_PORT
DESCRIPTION = (
    "On-call: people, schedules with layers and overrides, escalation policies, "
    "alerts and notification delivery."
)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service; `clock` replaces the wall clock (tests)."""
    settings = settings or load_settings()
    redact.install()  # links, feeds and integration keys carry tokens in their URLs
    app = build_app(
        plugin=PLUGIN,
        settings=settings,
        description=DESCRIPTION,
        routers=[
            people_router,
            schedules_router,
            overrides_router,
            policies_router,
            alerts_router,
            integrations_router,
            maintenance_router,
            links_router,
            feeds_router,
            hasura_router,
            answer_graphql_outages(graphql_router()),
        ],
        # GoAlert's generic API takes form fields too (services/oncall/integrations)
        form_paths=frozenset({"/api/v1/integrations/generic"}),
    )
    if clock is not None:
        app.state.clock = clock
    return app
