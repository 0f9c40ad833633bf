"""schemathesis over both services' OpenAPI documents: a bounded, deterministic run.

Each app is called in process (schemathesis' ASGI transport starts its lifespan
once) against the real embedded Postgres, authenticated with the plugin secret for
one account, after a little data is seeded under the ids the generator likes (the
documents' examples, ``0``) so that path parameters and references hit rows.

Every phase schemathesis has (examples, coverage, fuzzing, stateful) and every check
(``checks.enabled``) run with a fixed seed, derandomized. The run must answer no 500
and fail no check. Where a rule cannot be written in JSON Schema (a reference to a
row, one field against another, an opaque cursor the server did not issue), the
statuses that rule answers are added to ``positive_data_acceptance`` for the
operations concerned only (``ACCEPTED_REJECTIONS``).
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import events
from schemathesis.python import asgi

from services.anomaly.app import create_app as create_anomaly
from services.common.settings import Settings
from services.oncall.app import create_app as create_oncall
from tests.conftest import PLUGIN_SECRET, make_settings

SEED = 20261203
MAX_EXAMPLES = 15
ACCOUNT = "fuzz"
BASE = "http://testserver"
HEADERS = {"Authorization": f"Bearer {PLUGIN_SECRET}", "X-Hasura-Source-Account-Id": ACCOUNT}

# Valid by the schema, refused by a rule JSON Schema cannot state: the statuses that
# rule answers, by operation.
CURSOR = "400"  # a cursor this server did not issue (any text of its alphabet fits):
# accepted on every operation that takes a `cursor` (``_accepted``)
REFERENCE = "422"  # a row that does not exist (a person, a schedule, a policy, a detector)
ACROSS = "422"  # one field against another (start before end, at most 366 days, a
# threshold's `lower` not above `upper`, an algorithm's own parameters, a rotation's rules)
DESTINATION = "422"  # a contact URL the operator's policy refuses (a private address...)
HASURA = "400"  # a payload for another action, table or trigger
ACCEPTED_REJECTIONS: dict[str, dict[str, list[str]]] = {
    "anomaly": {
        "POST /api/v1/detectors": [ACROSS],
        "PATCH /api/v1/detectors/{detector_id}": [ACROSS],
        "POST /api/v1/detectors/{detector_id}/backtest": [ACROSS],
        "POST /api/v1/ingest": [REFERENCE],
        "POST /hasura/actions/scoreAnomalyPoints": [HASURA, REFERENCE],
        "POST /hasura/events/score": [HASURA, REFERENCE],
    },
    "oncall": {
        "GET /api/v1/overrides": [ACROSS],
        "POST /api/v1/people": [DESTINATION],
        "PATCH /api/v1/people/{person_id}": [DESTINATION],
        "POST /api/v1/schedules": [REFERENCE, ACROSS],
        "PATCH /api/v1/schedules/{schedule_id}": [REFERENCE, ACROSS],
        "GET /api/v1/schedules/{schedule_id}/shifts": [ACROSS],
        "GET /api/v1/schedules/{schedule_id}/calendar.ics": [ACROSS],
        "POST /api/v1/policies": [REFERENCE],
        "PATCH /api/v1/policies/{policy_id}": [REFERENCE],
        "POST /api/v1/overrides": [REFERENCE, ACROSS],
        "POST /api/v1/alerts": [REFERENCE],
        # a heartbeat's interval (and only a heartbeat's); its policy
        "POST /api/v1/integrations": [REFERENCE, ACROSS],
        # exactly one scope (policy, integration or detector), start before end
        "POST /api/v1/maintenance": [REFERENCE, ACROSS],
        "POST /hasura/actions/currentOncall": [HASURA],
        # GraphQL's own rule: operationName names an operation of the document
        "POST /graphql": ["400"],
    },
}
# schemathesis' default for positive_data_acceptance, which an operation's list extends
ACCEPTANCES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
# a body over a size limit is refused with 413 (SPEC), as the documents say
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def _accepted(service: str, document: dict[str, Any]) -> dict[str, list[str]]:
    """ACCEPTED_REJECTIONS of a service, plus CURSOR for every list."""
    accepted = {name: list(statuses) for name, statuses in ACCEPTED_REJECTIONS[service].items()}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if any(p["name"] == "cursor" for p in operation.get("parameters", [])):
                accepted.setdefault(f"{method.upper()} {path}", []).append(CURSOR)
    return accepted


def _config(service: str, document: dict[str, Any]) -> schemathesis.Config:
    operations = [
        {
            "include-name": name,
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTANCES, *statuses]}
            },
        }
        for name, statuses in _accepted(service, document).items()
    ]
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"X-Hasura-Source-Account-Id": ACCOUNT},
            "auth": {"openapi": {"bearer": {"bearer": PLUGIN_SECRET}}},
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # Postgres text cannot hold NUL: refused with a 422 (tests/*/test_bad_input)
                "allow-x00": False,
            },
            "checks": {
                "enabled": True,
                "negative_data_rejection": {"expected-statuses": REJECTIONS},
            },
            "cache": {"enabled": False},
            "workers": 1,
            "operations": operations,
        }
    )


@dataclass
class Outcome:
    requests: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    phases: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, service: str) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        phases = ", ".join(f"{k} {v}" for k, v in sorted(self.phases.items()))
        return (
            f"{service}: {self.requests} requests ({phases}) in {self.seconds:.1f}s, "
            f"{len(self.failures)} failures; statuses {statuses}"
        )


def _failure_text(event: Any, case_id: str, check: Any) -> str:
    interaction = event.recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    answered = "" if response is None else f"{response.status_code} {response.content[:300]!r}"
    failure = check.failure_info.failure
    return (
        f"{check.name}: {failure.title}: {str(failure.message)[:300]}\n"
        f"    {check.failure_info.code_sample}\n    -> {answered}"
    )


def fuzz(service: str, app: Any) -> Outcome:
    config = _config(service, app.openapi())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    outcome = Outcome()
    started = time.monotonic()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    outcome.requests += 1
                    outcome.statuses[interaction.response.status_code] += 1
                    outcome.phases[str(getattr(event, "phase", "fuzzing"))] += 1
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        outcome.failures.append(_failure_text(event, case_id, check))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.failures.append(f"error: {event!r}"[:1000])
    outcome.seconds = time.monotonic() - started
    return outcome


def _post(client: Any, path: str, body: dict[str, Any]) -> None:
    response = client.post(f"{BASE}{path}", json=body, headers=HEADERS)
    assert response.status_code in (200, 201), (path, response.status_code, response.text)


def seed_oncall(client: Any) -> None:
    for person in ("0", "primary-oncall"):
        _post(
            client,
            "/api/v1/people",
            {"id": person, "name": person, "email": "ada@example.com", "timezone": "UTC"},
        )
    rotation = {"type": "daily", "handoff": "2026-11-23T09:00", "participants": ["0"]}
    for schedule in ("0", "primary-oncall"):
        _post(
            client,
            "/api/v1/schedules",
            {
                "id": schedule,
                "name": schedule,
                "timezone": "Europe/Berlin",
                "layers": [{"name": "main", "rotation": rotation}],
            },
        )
    for policy in ("0", "backend-primary", "primary-oncall"):
        steps = [{"targets": [{"type": "person", "id": "0"}, {"type": "schedule", "id": "0"}]}]
        _post(client, "/api/v1/policies", {"id": policy, "name": policy, "steps": steps})
    _post(
        client,
        "/api/v1/overrides",
        {
            "schedule_id": "0",
            "person_id": "primary-oncall",
            "start": "2026-11-23T09:00:00Z",
            "end": "2026-11-24T09:00:00Z",
        },
    )
    _post(client, "/api/v1/alerts", {"policy_id": "0", "summary": "seeded"})


def seed_anomaly(client: Any) -> None:
    for detector in ("0", "api-latency", "queue-depth"):
        _post(client, "/api/v1/detectors", {"id": detector, "name": detector})
    points = [
        {
            "detector_id": detector,
            "value": 100.0 + (i % 7) + (500.0 if i == 59 else 0.0),
            "timestamp": f"2026-11-23T{8 + i // 60:02d}:{i % 60:02d}:00Z",
        }
        for detector in ("0", "api-latency")
        for i in range(60)
    ]
    _post(client, "/api/v1/ingest", {"points": points})


SERVICES = {
    "anomaly": (lambda s: create_anomaly(s, background=False), seed_anomaly),
    "oncall": (create_oncall, seed_oncall),
}


@pytest.fixture(scope="module")
def fuzz_settings(database_url: str) -> Settings:
    return make_settings(database_url, oncall_allowed_destinations="127.0.0.1")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_openapi_document_holds_under_fuzzing(
    service: str, fuzz_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    make, seed = SERVICES[service]
    app = make(fuzz_settings)
    try:
        with asgi.get_client(app) as client:
            seed(client)
        outcome = fuzz(service, app)
    finally:
        asgi.shutdown_lifespans()  # the pool closes before the database goes
    with capsys.disabled():
        print(f"\n{outcome.summary(service)}")
    assert outcome.statuses[500] == 0, "\n".join(outcome.failures)
    assert not outcome.failures, "\n".join(sorted(set(outcome.failures)))
