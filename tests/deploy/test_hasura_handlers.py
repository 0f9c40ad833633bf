"""hasura/metadata against the running services: handlers, types, remote schema.

Every action handler, event webhook and remote schema URL, resolved with the
environment docker-compose.yml gives Hasura, lands on a real POST route of the
service it names; those routes refuse callers without the plugin secret;
actions.graphql parses and its types match the handlers' pydantic models field
by field (names, nullability, lists, scalars); and the remote relationship from
detectors to on-call exists in the committed Strawberry SDL.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

import graphql
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, NaiveDatetime

from services.anomaly.app import create_app as create_anomaly
from services.oncall.app import create_app as create_oncall
from tests.conftest import PLUGIN_SECRET, make_settings, serve_app
from tests.deploy.support import (
    ENV_EXAMPLE,
    METADATA_DIR,
    SCHEMA_DIR,
    dotenv,
    load_metadata_file,
    resolve_template,
    service_environment,
    template_env_names,
    tracked_tables,
)

# compose service -> (app factory, port it serves)
SERVICES: dict[str, tuple[Any, int]] = {
    "nself-anomaly": (create_anomaly, 3842),
    "nself-oncall": (create_oncall, 3840),
}
BEARER_ENV = "NSELF_PLUGIN_BEARER"
# Postgres scalars Hasura exposes that actions.graphql reuses
HASURA_SCALARS = ("timestamptz", "bigint", "jsonb")
ONCALL_SDL = SCHEMA_DIR / "oncall.graphql"


@cache
def app(service: str) -> FastAPI:
    factory, _ = SERVICES[service]
    # built, never started: the routes are what is inspected
    return factory(make_settings("postgresql://contract@127.0.0.1:9/unused"))


def flat_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) of every route, inside included routers too.

    FastAPI >= 0.16x keeps an included router as one wrapper in `app.routes`
    (`original_router` + `include_context.prefix`); older ones copy its routes.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = route.include_context
            yield from flat_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif getattr(route, "path", None) is not None:
            yield prefix + route.path, route


def post_routes(service: str) -> dict[str, Any]:
    return {
        path: route
        for path, route in flat_routes(app(service).routes)
        if "POST" in (getattr(route, "methods", None) or set())
    }


def hasura_env() -> dict[str, str]:
    return service_environment("hasura", dotenv(ENV_EXAMPLE))


def actions() -> list[dict[str, Any]]:
    return load_metadata_file(METADATA_DIR / "actions.yaml")["actions"]  # type: ignore[no-any-return]


def remote_schemas() -> list[dict[str, Any]]:
    return load_metadata_file(METADATA_DIR / "remote_schemas.yaml")  # type: ignore[no-any-return]


def webhooks() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(what, URL template, definition with headers) for everything Hasura calls."""
    for action in actions():
        yield f"action {action['name']}", action["definition"]["handler"], action["definition"]
    for name, table in tracked_tables().items():
        for trigger in table.get("event_triggers") or []:
            yield f"event trigger {trigger['name']} on {name}", trigger["webhook"], trigger
    for schema in remote_schemas():
        yield f"remote schema {schema['name']}", schema["definition"]["url"], schema["definition"]


def resolve(template: str) -> tuple[str, str]:
    """(compose service, path) a metadata URL reaches inside the compose network."""
    url = urlsplit(resolve_template(template, hasura_env()))
    assert url.scheme == "http", template
    service = url.hostname or ""
    assert service in SERVICES, f"{template} resolves to {url.hostname}, not a service"
    assert url.port == SERVICES[service][1], f"{template}: port {url.port}"
    return service, url.path


WEBHOOKS = {what: (template, definition) for what, template, definition in webhooks()}


def test_everything_hasura_calls_is_accounted_for() -> None:
    assert set(WEBHOOKS) == {
        "action scoreAnomalyPoints",
        "action currentOncall",
        "event trigger np_anomaly_score_points on public.np_anomaly_data_points",
        "remote schema nself-oncall",
    }


@pytest.mark.parametrize("what", sorted(WEBHOOKS))
def test_url_comes_from_the_environment_and_reaches_a_post_route(what: str) -> None:
    template, _ = WEBHOOKS[what]
    names = template_env_names(template)
    assert names, f"{what}: the URL must come from the environment ({template})"
    assert names <= set(hasura_env()), f"{what}: hasura service lacks {names - set(hasura_env())}"
    service, path = resolve(template)
    assert path in post_routes(service), (
        f"{what}: {service} has no POST {path}; it has {sorted(post_routes(service))}"
    )


@pytest.mark.parametrize("what", sorted(WEBHOOKS))
def test_hasura_sends_the_plugin_bearer_and_no_client_headers(what: str) -> None:
    _, definition = WEBHOOKS[what]
    headers = {h["name"]: h for h in definition.get("headers") or []}
    assert headers.get("Authorization") == {
        "name": "Authorization",
        "value_from_env": BEARER_ENV,
    }, f"{what}: {headers}"
    # the account must come from Hasura's resolved session, never from a client header
    assert definition.get("forward_client_headers", False) is False, what
    assert hasura_env()[BEARER_ENV].startswith("Bearer ")


@pytest.fixture(scope="module")
async def clients(database_url: str) -> Any:
    from contextlib import AsyncExitStack

    settings = make_settings(database_url)
    async with AsyncExitStack() as stack:
        opened = {}
        for service, (factory, _) in SERVICES.items():
            opened[service] = await stack.enter_async_context(
                serve_app(factory(settings), raise_app_exceptions=False)
            )
        yield opened


@pytest.mark.parametrize("what", sorted(WEBHOOKS))
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-secret-of-enough-length", f"Basic {PLUGIN_SECRET}"]
)
async def test_handlers_refuse_callers_without_the_secret(
    clients: dict[str, Any], what: str, authorization: str | None
) -> None:
    template, _ = WEBHOOKS[what]
    service, path = resolve(template)
    headers = {"Authorization": authorization} if authorization else {}
    body = {"query": "{ __typename }"} if what.startswith("remote") else _payload(what)
    response = await clients[service].post(path, json=body, headers=headers)
    assert response.status_code == 401, (what, response.status_code, response.text)


async def test_handlers_accept_the_secret_hasura_sends(clients: dict[str, Any]) -> None:
    # what NSELF_PLUGIN_BEARER holds: "Bearer " + the services' PLUGIN_SECRET
    bearer = {"Authorization": f"Bearer {PLUGIN_SECRET}"}
    for what, (template, _) in WEBHOOKS.items():
        service, path = resolve(template)
        body = {"query": "{ __typename }"} if what.startswith("remote") else _payload(what)
        response = await clients[service].post(path, json=body, headers=bearer)
        assert response.status_code != 401, (what, response.text)
        assert response.status_code < 500, (what, response.text)


def _payload(what: str) -> dict[str, Any]:
    """Hasura's documented request bodies (SPEC section 7)."""
    session = {"x-hasura-role": "user", "x-hasura-source-account-id": "acct-contract"}
    if what == "action scoreAnomalyPoints":
        return {
            "action": {"name": "scoreAnomalyPoints"},
            "input": {"points": []},
            "session_variables": session,
            "request_query": "mutation { scoreAnomalyPoints(points: []) { accepted } }",
        }
    if what == "action currentOncall":
        return {
            "action": {"name": "currentOncall"},
            "input": {"scheduleId": "no-such-schedule"},
            "session_variables": session,
            "request_query": 'query { currentOncall(scheduleId: "no-such-schedule") { at } }',
        }
    return {
        "id": "85558393-c75d-4d2f-9c15-e80591b83894",
        "created_at": "2026-11-22T20:00:00.000000",
        "trigger": {"name": "np_anomaly_score_points"},
        "table": {"schema": "public", "name": "np_anomaly_data_points"},
        "event": {
            "op": "INSERT",
            "data": {
                "old": None,
                "new": {
                    "id": 1,
                    "source_account_id": "acct-contract",
                    "detector_id": "no-such-detector",
                    "ts": "2026-11-22T20:00:00+00:00",
                    "value": 1.0,
                },
            },
            "session_variables": session,
            "trace_context": None,
        },
        "delivery_info": {"max_retries": 10, "current_retry": 0},
    }


# --- actions.graphql against the handlers' models ---------------------------------------

ACTIONS_SDL = (METADATA_DIR / "actions.graphql").read_text()


def actions_schema() -> graphql.GraphQLSchema:
    scalars = "".join(f"scalar {name}\n" for name in HASURA_SCALARS)
    return graphql.build_schema(scalars + ACTIONS_SDL)


def test_actions_graphql_parses_and_declares_every_action() -> None:
    graphql.parse(ACTIONS_SDL)
    schema = actions_schema()
    roots = {
        "mutation": schema.mutation_type,
        "query": schema.query_type,
    }
    declared: dict[str, str] = {}
    for kind, root in roots.items():
        for name in root.fields if root else {}:
            declared[name] = kind
    assert declared == {a["name"]: a["definition"].get("type", "mutation") for a in actions()}
    # every custom type is listed in actions.yaml
    custom = load_metadata_file(METADATA_DIR / "actions.yaml")["custom_types"]
    listed = {
        t["name"]
        for kind in ("objects", "input_objects", "enums", "scalars")
        for t in custom.get(kind) or []
    }
    defined = {
        name
        for name, named in schema.type_map.items()
        if not name.startswith("__")
        and name not in {"Query", "Mutation", *HASURA_SCALARS}
        and not graphql.is_specified_scalar_type(named)
    }
    assert listed == defined


def _action_route(name: str) -> tuple[APIRoute, Any]:
    template = next(a for a in actions() if a["name"] == name)["definition"]["handler"]
    service, path = resolve(template)
    route = post_routes(service)[path]
    return route, __import__(route.endpoint.__module__, fromlist=["_"])


SCALARS: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "ID": (str,),
    "Float": (float,),
    "Int": (int,),
    "bigint": (int,),
    "Boolean": (bool,),
    "timestamptz": (datetime,),
    "jsonb": (dict,),
}


def _strip(annotation: Any) -> tuple[Any, bool]:
    """(the type without Annotated/Optional, whether None is allowed)."""
    nullable = False
    while True:
        if annotation in (AwareDatetime, NaiveDatetime):
            return datetime, nullable
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            nullable = nullable or len(members) < len(typing.get_args(annotation))
            assert len(members) == 1, f"unions are not GraphQL types: {annotation}"
            annotation = members[0]
        else:
            return annotation, nullable


def _is_string_like(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Literal:
        return all(isinstance(v, str) for v in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, (str, enum.Enum))


def compare(gql: graphql.GraphQLType, annotation: Any, where: str) -> None:
    python, nullable = _strip(annotation)
    non_null = graphql.is_non_null_type(gql)
    assert non_null == (not nullable), (
        f"{where}: GraphQL {gql} is {'non-null' if non_null else 'nullable'} "
        f"but the model says {annotation}"
    )
    inner = gql.of_type if non_null else gql  # type: ignore[union-attr]
    if graphql.is_list_type(inner):
        assert typing.get_origin(python) is list, f"{where}: GraphQL list, model {python}"
        compare(inner.of_type, typing.get_args(python)[0], f"{where}[]")  # type: ignore[union-attr]
        return
    assert typing.get_origin(python) is not list, f"{where}: model list, GraphQL {inner}"
    named = graphql.get_named_type(inner)
    if isinstance(named, graphql.GraphQLScalarType):
        if named.name in ("String", "ID") and _is_string_like(python):
            return
        allowed = SCALARS[named.name]
        python = typing.get_origin(python) or python  # dict[str, str] -> dict
        assert isinstance(python, type) and issubclass(python, allowed), (
            f"{where}: GraphQL {named.name}, model {python}"
        )
        assert not (named.name in ("Int", "bigint") and python is bool), where
        return
    assert isinstance(python, type) and issubclass(python, BaseModel), f"{where}: {python}"
    compare_fields(named, python, where)  # type: ignore[arg-type]


def compare_fields(
    gql: graphql.GraphQLObjectType | graphql.GraphQLInputObjectType,
    model: type[BaseModel],
    where: str,
) -> None:
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    assert set(gql.fields) == set(fields), (
        f"{where}: GraphQL {gql.name} has {sorted(gql.fields)}, "
        f"model {model.__name__} has {sorted(fields)}"
    )
    for name, field in gql.fields.items():
        compare(field.type, fields[name].annotation, f"{where}.{name}")
        if isinstance(gql, graphql.GraphQLInputObjectType) and not graphql.is_non_null_type(
            field.type
        ):
            assert not fields[name].is_required(), f"{where}.{name}: optional in GraphQL"


@pytest.mark.parametrize("name", ["scoreAnomalyPoints", "currentOncall"])
def test_action_types_match_the_handler_models(name: str) -> None:
    schema = actions_schema()
    action = next(a for a in actions() if a["name"] == name)
    root = (
        schema.query_type if action["definition"].get("type") == "query" else schema.mutation_type
    )
    assert root is not None
    field = root.fields[name]
    route, module = _action_route(name)
    # output: the route's response model
    compare(field.type, _output_annotation(field.type, route.response_model), f"{name} output")
    # input: the handler module's <Name>Input model holds the arguments
    model = getattr(module, name[0].upper() + name[1:] + "Input")
    arguments = graphql.GraphQLInputObjectType(
        f"{name}Arguments",
        {arg: graphql.GraphQLInputField(spec.type) for arg, spec in field.args.items()},
    )
    compare_fields(arguments, model, f"{name} arguments")


def _output_annotation(gql: graphql.GraphQLType, model: Any) -> Any:
    """The route's response model, nullable when the action's output type is."""
    return model if graphql.is_non_null_type(gql) else model | None


# --- the remote schema and the remote relationship ------------------------------------


def oncall_sdl() -> graphql.GraphQLSchema:
    return graphql.build_schema(ONCALL_SDL.read_text())


def test_committed_sdl_is_strawberrys_export() -> None:
    from services.oncall.graphql.schema import sdl

    assert ONCALL_SDL.read_text() == sdl(), "run `nsentry export-schema`"


def test_remote_schema_is_the_oncall_graphql_endpoint() -> None:
    (schema,) = remote_schemas()
    assert schema["name"] == "nself-oncall"
    service, path = resolve(schema["definition"]["url"])
    assert (service, path) == ("nself-oncall", "/graphql")


def _relationships() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, table in tracked_tables().items():
        for relationship in table.get("remote_relationships") or []:
            found.append((name, relationship))
    return found


def test_detectors_reach_the_oncall_of_their_policy() -> None:
    relationships = dict((rel["name"], (table, rel)) for table, rel in _relationships())
    table, relationship = relationships["oncall"]
    assert table == "public.np_anomaly_detectors"
    target = relationship["definition"]["to_remote_schema"]
    assert target["lhs_fields"] == ["escalation_policy_id"]
    assert target["remote_field"]["policy"]["arguments"] == {"id": "$escalation_policy_id"}


@pytest.mark.parametrize("index", range(len(_relationships())))
def test_remote_relationship_fields_exist_in_the_sdl(index: int) -> None:
    table, relationship = _relationships()[index]
    target = relationship["definition"]["to_remote_schema"]
    assert target["remote_schema"] in {s["name"] for s in remote_schemas()}
    schema = oncall_sdl()
    lhs = set(target["lhs_fields"])
    parent: Any = schema.query_type
    node = target["remote_field"]
    path = "Query"
    while node:
        ((field_name, spec),) = node.items()
        assert field_name in parent.fields, (
            f"{table}.{relationship['name']}: no {path}.{field_name}"
        )
        field = parent.fields[field_name]
        for argument, value in (spec.get("arguments") or {}).items():
            assert argument in field.args, f"{path}.{field_name} has no argument {argument}"
            if isinstance(value, str) and value.startswith("$"):
                assert value[1:] in lhs, f"{value} is not one of lhs_fields {lhs}"
                # a text column feeds it
                named = graphql.get_named_type(field.args[argument].type)
                assert named.name in ("ID", "String"), f"{argument}: {named.name}"
        # every required argument is given
        for argument, spec_arg in field.args.items():
            if (
                graphql.is_non_null_type(spec_arg.type)
                and spec_arg.default_value is graphql.Undefined
            ):
                assert argument in (spec.get("arguments") or {}), f"{path}.{field_name}({argument})"
        parent = graphql.get_named_type(field.type)
        path = f"{path}.{field_name}"
        node = spec.get("field")
    # the relationship ends on people
    assert isinstance(parent, graphql.GraphQLObjectType)
    assert {"id", "name"} <= set(parent.fields)


def test_action_and_remote_root_fields_and_types_do_not_collide() -> None:
    """Hasura merges actions and the remote schema into one schema."""
    (remote,) = remote_schemas()
    customization = remote["definition"].get("customization") or {}
    sdl_schema = oncall_sdl()
    action_schema = actions_schema()
    action_roots = set(action_schema.query_type.fields) | set(  # type: ignore[union-attr]
        action_schema.mutation_type.fields  # type: ignore[union-attr]
    )
    if not customization.get("root_fields_namespace"):
        clash = action_roots & set(sdl_schema.query_type.fields)  # type: ignore[union-attr]
        assert not clash, f"root fields defined twice: {clash}"
    prefix = (customization.get("type_names") or {}).get("prefix", "")
    remote_types = {
        prefix + name
        for name, named in sdl_schema.type_map.items()
        if not name.startswith("__") and not graphql.is_specified_scalar_type(named)
    }
    action_types = {
        name
        for name, named in action_schema.type_map.items()
        if not name.startswith("__")
        and name not in {"Query", "Mutation", *HASURA_SCALARS}
        and not graphql.is_specified_scalar_type(named)
    }
    assert not remote_types & action_types
