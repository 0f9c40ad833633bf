"""Strawberry schema served at `/graphql` (Hasura's remote schema for on-call).

Every field answers through the same store functions as the REST routes
(so the GraphQL on-call of a schedule is the REST answer), inside the one
tenant transaction of the request (`transaction.py`) in the caller's account:
the plugin bearer with the forwarded `X-Hasura-Source-Account-Id`, or a Hasura
JWT. A document is checked against the limits of `limits.py` (tokens, cost,
depth, aliases) before it is validated or run. Errors carry `extensions.code`
(`not_found`, `validation_error`, `query_too_complex`, `timeout`, `internal`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import strawberry
from fastapi import Request
from graphql import GraphQLError
from strawberry.fastapi import GraphQLRouter
from strawberry.types import Info

from services.common.auth import Principal, authenticate
from services.common.errors import ApiError
from services.common.responses import ENVELOPE_REF
from services.oncall.deps import clock_of
from services.oncall.escalation import engine, runner
from services.oncall.graphql.limits import CODE as LIMIT_CODE
from services.oncall.graphql.limits import GraphQLLimits, Limits
from services.oncall.graphql.transaction import RequestConnection, RequestTransaction
from services.oncall.people import service as people
from services.oncall.policies import service as policies
from services.oncall.schedules import models as rest
from services.oncall.schedules import service as schedules

log = logging.getLogger("nsentry.oncall.graphql")
P = ParamSpec("P")
R = TypeVar("R")
MAX_LIST = 1000


def _errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """API errors become GraphQL errors with a code; anything else a bare 'internal error'."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except GraphQLError:
            raise
        except ApiError as exc:
            extensions: dict[str, Any] = {"code": exc.code}
            if exc.details is not None:
                extensions["details"] = exc.details
            raise GraphQLError(exc.message, extensions=extensions) from None
        except Exception:
            log.exception("graphql resolver %s failed", fn.__name__)
            raise GraphQLError("internal error", extensions={"code": "internal"}) from None

    return wrapper


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise GraphQLError(
            f"{name} must be an RFC 3339 timestamp with a UTC offset",
            extensions={"code": "validation_error"},
        )
    return value


def _ctx(info: Info) -> dict[str, Any]:
    return info.context  # type: ignore[no-any-return]


def _tx(info: Info) -> Any:
    """The request's transaction (opened by the first field that reads the database)."""
    db: RequestConnection = _ctx(info)["db"]
    return db.use()


def _now(info: Info) -> datetime:
    return _ctx(info)["clock"]()


@strawberry.type(description="A person who can be on call")
class Person:
    id: strawberry.ID
    name: str | None = strawberry.field(description="null when the person no longer exists")
    email: str | None

    @classmethod
    def of(cls, ref: rest.PersonRef | None) -> Person | None:
        if ref is None:
            return None
        return cls(id=strawberry.ID(ref.id), name=ref.name, email=ref.email)


@strawberry.type(description="The next change of person")
class NextOnCall:
    person: Person | None
    start: datetime


@strawberry.type(description="Who is on call at an instant, why, and who comes next")
class OnCall:
    schedule_id: strawberry.ID
    at: datetime
    person: Person | None = strawberry.field(description="null in a gap")
    source: str | None = strawberry.field(description="override or layer")
    layer: str | None
    override_id: str | None
    shift_start: datetime | None
    shift_end: datetime | None
    next: NextOnCall | None

    @classmethod
    def of(cls, answer: rest.Oncall) -> OnCall:
        """The REST answer (`schedules.service.oncall_at` maps the resolver's), field for field."""
        following = answer.next
        return cls(
            **answer.model_dump(exclude={"person", "next"}),
            person=Person.of(answer.person),
            next=None
            if following is None
            else NextOnCall(person=Person.of(following.person), start=following.start),
        )


@strawberry.type(description="A contiguous piece of the final schedule; a gap has no person")
class Shift:
    start: datetime
    end: datetime
    person_id: strawberry.ID | None
    source: str | None
    layer: str | None
    override_id: str | None


@strawberry.type(description="The final schedule over a range")
class ShiftList:
    since: datetime
    until: datetime
    shifts: list[Shift]
    coverage: float = strawberry.field(description="fraction of the range with someone on call")


@strawberry.type
class Rotation:
    type: str
    length: int
    shift_seconds: int | None
    handoff: str = strawberry.field(description="local wall time in the schedule's zone")
    participants: list[strawberry.ID]


@strawberry.type
class Restriction:
    days: list[str]
    start: str
    end: str


@strawberry.type
class Layer:
    name: str
    rotation: Rotation
    restrictions: list[Restriction]


def _layer(data: dict[str, Any]) -> Layer:
    rotation = data["rotation"]
    return Layer(
        name=data["name"],
        rotation=Rotation(
            type=rotation["type"],
            length=rotation["length"],
            shift_seconds=rotation.get("shift_seconds"),
            handoff=rotation["handoff"],
            participants=[strawberry.ID(p) for p in rotation["participants"]],
        ),
        restrictions=[Restriction(**r) for r in data.get("restrictions", [])],
    )


@strawberry.type(description="An on-call schedule")
class Schedule:
    id: strawberry.ID
    name: str
    timezone: str
    layers: list[Layer]
    revision: int

    @classmethod
    def of(cls, model: rest.Schedule) -> Schedule:
        return cls(
            id=strawberry.ID(model.id),
            name=model.name,
            timezone=model.timezone,
            layers=[_layer(layer) for layer in model.layers],
            revision=model.revision,
        )

    @strawberry.field(description="Who is on call at `at` (default now)")
    @_errors
    async def oncall(self, info: Info, at: datetime | None = None) -> OnCall:
        moment = _aware(at, "at") or _now(info)
        async with _tx(info) as conn:
            return OnCall.of(await schedules.oncall_at(conn, schedule_id=self.id, at=moment))

    @strawberry.field(description="The final schedule over [since, until), at most 366 days")
    @_errors
    async def shifts(self, info: Info, since: datetime, until: datetime) -> ShiftList:
        lo, hi = _aware(since, "since"), _aware(until, "until")
        assert lo is not None and hi is not None
        async with _tx(info) as conn:
            final = await schedules.shifts_between(conn, schedule_id=self.id, since=lo, until=hi)
        return ShiftList(
            since=final.since,
            until=final.until,
            shifts=[Shift(**s.model_dump()) for s in final.shifts],
            coverage=final.coverage,
        )


@strawberry.type
class EscalationTarget:
    type: str = strawberry.field(description="person or schedule")
    id: strawberry.ID


@strawberry.type
class EscalationStep:
    delay_minutes: int
    targets: list[EscalationTarget]


@strawberry.type(description="An escalation policy")
class EscalationPolicy:
    id: strawberry.ID
    name: str
    repeat: int
    steps: list[EscalationStep]

    @strawberry.field(description="Who step 0 would notify now")
    @_errors
    async def current_responders(self, info: Info) -> list[Person]:
        targets = [engine.Target(t.type, str(t.id)) for t in self.steps[0].targets]
        async with _tx(info) as conn:
            ids = await runner.responders(conn, targets=targets, at=_now(info))
            found = await people.get_many(conn, ids=ids)
        return [
            Person(id=strawberry.ID(i), name=found[i].name, email=found[i].email)
            for i in ids
            if i in found
        ]


@strawberry.type
class Query:
    @strawberry.field(description="A schedule of the caller's account (null if none)")
    @_errors
    async def schedule(self, info: Info, id: strawberry.ID) -> Schedule | None:
        async with _tx(info) as conn:
            try:
                row = await schedules.get_plain(conn, schedule_id=str(id))
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
        return Schedule.of(row)

    @strawberry.field(description="The caller's schedules, oldest first")
    @_errors
    async def schedules(self, info: Info, limit: int = 100) -> list[Schedule]:
        if not 1 <= limit <= MAX_LIST:
            raise GraphQLError(
                f"limit must be between 1 and {MAX_LIST}", extensions={"code": "validation_error"}
            )
        async with _tx(info) as conn:
            page = await schedules.get_all(conn, limit=limit, cursor=None)
        return [Schedule.of(s) for s in page.data]

    @strawberry.field(description="Who is on call for a schedule at `at` (default now)")
    @_errors
    async def current_oncall(
        self, info: Info, schedule_id: strawberry.ID, at: datetime | None = None
    ) -> OnCall:
        moment = _aware(at, "at") or _now(info)
        async with _tx(info) as conn:
            return OnCall.of(
                await schedules.oncall_at(conn, schedule_id=str(schedule_id), at=moment)
            )

    @strawberry.field(description="An escalation policy of the caller's account (null if none)")
    @_errors
    async def policy(self, info: Info, id: strawberry.ID) -> EscalationPolicy | None:
        async with _tx(info) as conn:
            found = await policies.find(conn, policy_id=str(id))
        if found is None:
            return None
        return EscalationPolicy(
            id=strawberry.ID(found.id),
            name=found.name,
            repeat=found.repeat,
            steps=[
                EscalationStep(
                    delay_minutes=s.delay_minutes,
                    targets=[
                        EscalationTarget(type=t.type, id=strawberry.ID(t.id)) for t in s.targets
                    ],
                )
                for s in found.steps
            ],
        )


# the fields whose resolvers read the database (the cost of `limits.py` weighs them)
DB_FIELDS = frozenset(
    {
        ("Query", "schedule"),
        ("Query", "schedules"),
        ("Query", "currentOncall"),
        ("Query", "policy"),
        ("Schedule", "oncall"),
        ("Schedule", "shifts"),
        ("EscalationPolicy", "currentResponders"),
    }
)


class _Limits(GraphQLLimits):
    db_fields = DB_FIELDS
    list_default = MAX_LIST


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs every error; a refused document is the caller's, not ours."""
        ours = [e for e in errors if (e.extensions or {}).get("code") != LIMIT_CODE]
        if ours:
            super().process_errors(ours, execution_context)


schema = _Schema(query=Query, extensions=[_Limits, RequestTransaction])


async def _context(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    principal: Principal = authenticate(request.headers, settings)
    limits = Limits.of(settings)
    return {
        "principal": principal,
        "pool": request.app.state.pool,
        "db": RequestConnection(
            request.app.state.pool,
            principal.account_id,
            statement_timeout_ms=limits.statement_timeout_ms,
        ),
        "limits": limits,
        "clock": clock_of(request),
        "request": request,
    }


class _Router(GraphQLRouter):
    """Strawberry's router; a body that is not UTF-8, or JSON that is not a request
    object (nor a batch of them), is a 400 like any body that is not JSON (Strawberry
    lets the decoding error, and ``.get`` on a string or a number, through as a 500)."""

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = super().decode_json(data)
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(f"not UTF-8: {exc.reason}", "", 0) from None
        requests = decoded if isinstance(decoded, list) else [decoded]
        if not all(isinstance(request, dict) for request in requests):
            raise json.JSONDecodeError("a GraphQL request is a JSON object", "", 0)
        return decoded


def graphql_router() -> GraphQLRouter:
    router = _Router(
        schema,
        path="/graphql",
        graphql_ide=None,
        allow_queries_via_get=False,
        context_getter=_context,
        tags=["graphql"],
        responses={400: BAD_GRAPHQL_REQUEST},
    )
    # without the IDE and GET queries, Strawberry's GET route only answers 404: dropped,
    # a GET is a 405 with `Allow: POST` like any method a route does not take
    router.routes = [route for route in router.routes if getattr(route, "methods", None) != {"GET"}]
    for route in router.routes:
        if getattr(route, "methods", None) == {"POST"}:
            route.openapi_extra = {"requestBody": GRAPHQL_REQUEST}  # type: ignore[attr-defined]
    return router


GRAPHQL_REQUEST: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "minLength": 1},
                    "variables": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                    "operationName": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "extensions": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                },
            },
            "example": {"query": "{ schedules(limit: 10) { id name } }"},
        }
    },
}


# Strawberry refuses a request it cannot read (no body, a body that is not a GraphQL
# request) in plain text; a malformed account header is the envelope like anywhere.
BAD_GRAPHQL_REQUEST: dict[str, Any] = {
    "description": "not a GraphQL request (text), or a malformed account header (envelope)",
    "content": {
        "text/plain": {"schema": {"type": "string"}},
        "application/json": {"schema": {"$ref": ENVELOPE_REF}},
    },
}


def sdl() -> str:
    """The schema in SDL, as committed under `schema/oncall.graphql`."""
    return schema.as_str() + "\n"
