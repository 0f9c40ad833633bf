"""A detector's Prometheus source saved by the detector routes (create, PATCH), in the
transaction that saves the detector: the URL judged by the destination policy (as
written: the addresses it resolves to are judged before every poll), the secrets
split from what is stored with the detector and kept in the pull state."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.anomaly.prometheus_pull import store
from services.anomaly.prometheus_pull.source import PROMETHEUS, Secrets, split_secrets
from services.common.destinations import DestinationPolicy
from services.common.errors import invalid_field
from services.common.settings import Settings


def source_policy(settings: Settings) -> DestinationPolicy:
    """Where sources may be: public addresses, ``ANOMALY_ALLOWED_SOURCES``, and loopback
    in local mode (``nsentry up``)."""
    return DestinationPolicy.from_settings(
        settings.allowed_sources,
        local_mode=settings.nsentry_local_mode,
        setting="ANOMALY_ALLOWED_SOURCES",
    )


async def prepare(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    account: str,
    detector_id: str,
    source: dict[str, Any],
) -> tuple[dict[str, Any], Secrets | None]:
    """The ``metric_source`` to store with the detector (secrets masked, a numeric
    host in canonical form) and the secrets to keep (None: not a prometheus source);
    a 422 naming ``metric_source.url`` when the policy refuses it. A masked secret
    (``"<redacted>"``, as GET shows it) keeps the stored value."""
    if source.get("type") != PROMETHEUS:
        return source, None
    policy = source_policy(settings)
    problem = policy.literal_problem(source["url"])
    if problem is not None:
        raise invalid_field("metric_source.url", problem)
    source = {**source, "url": policy.canonical_url(source["url"])}
    stored, secrets = split_secrets(source)
    old = await store.stored_secrets(conn, account=account, detector_id=detector_id)
    secrets = secrets.merged(old)
    if secrets.headers:
        stored["headers"] = {name: stored["headers"][name] for name in secrets.headers}
    else:
        stored.pop("headers", None)
    if secrets.bearer is None:
        stored.pop("bearer", None)
    return stored, secrets


# after the detector row is saved: its pull state in step with the source
write = store.write_source
