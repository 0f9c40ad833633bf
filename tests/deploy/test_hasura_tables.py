"""hasura/metadata: the tracked tables, checked against the migrated database.

The np_anomaly tables (detectors, points, series) are tracked; role `user` may
select, insert, update and delete only rows of its own account
(`source_account_id` = `X-Hasura-Source-Account-Id`, preset on insert), only
reads series, never sees a series' learned `state`, and cannot write what the
service computes. Every column the metadata
names exists in the tables the migrations create.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.common import db
from tests.deploy.support import (
    HASURA_DIR,
    METADATA_DIR,
    databases,
    load_metadata_file,
    load_yaml,
    tracked_tables,
)

TABLES = (
    "public.np_anomaly_detectors",
    "public.np_anomaly_data_points",
    "public.np_anomaly_series",
)
# the operations role `user` has on each table (series are the service's to write)
USER_OPERATIONS = {
    "public.np_anomaly_detectors": ("select", "insert", "update", "delete"),
    "public.np_anomaly_data_points": ("select", "insert", "update", "delete"),
    "public.np_anomaly_series": ("select",),
}
ACCOUNT_VARIABLE = "x-hasura-source-account-id"
OWN_ROWS = {"source_account_id": {"_eq": "X-Hasura-Source-Account-Id"}}
OPERATIONS = ("select", "insert", "update", "delete")
# internal columns no user column list may name
HIDDEN = {
    # the model (checkpoint `state` + `journal`, its identity) and the threshold run state
    "public.np_anomaly_detectors": set(),
    "public.np_anomaly_data_points": set(),
    "public.np_anomaly_series": {"state", "journal", "checkpoint_id", "policy_state"},
}
# what a user may write; everything else is the service's (scores, counters, model)
WRITABLE = {
    "public.np_anomaly_detectors": {
        "insert": {
            "id",
            "name",
            "description",
            "metric_source",
            "algorithm",
            "params",
            "thresholds",
            "escalation_policy_id",
            "enabled",
            "group_by",
            "max_series",
            "no_data_seconds",
        },
        "update": {
            "name",
            "description",
            "thresholds",
            "escalation_policy_id",
            "enabled",
            "max_series",
            "no_data_seconds",
        },
    },
    "public.np_anomaly_data_points": {
        "insert": {"detector_id", "ts", "value"},
        "update": {"status", "note", "reviewed_at"},
    },
}
LIST_FILES = (
    "allow_list.yaml",
    "cron_triggers.yaml",
    "inherited_roles.yaml",
    "query_collections.yaml",
    "rest_endpoints.yaml",
    "remote_schemas.yaml",
)
# what `hasura metadata export` writes for a project like this one
REQUIRED_FILES = (
    *LIST_FILES,
    "version.yaml",
    "actions.graphql",
    "actions.yaml",
    "api_limits.yaml",
    "network.yaml",
    "graphql_schema_introspection.yaml",
    "databases/databases.yaml",
    "databases/default/tables/tables.yaml",
)


def permissions(table: dict[str, Any], operation: str) -> dict[str, dict[str, Any]]:
    """role -> permission body of one operation."""
    return {p["role"]: p["permission"] for p in table.get(f"{operation}_permissions") or []}


def normalise_session(node: Any) -> Any:
    """Session variable names are case-insensitive in Hasura: compare them lower-cased."""
    if isinstance(node, dict):
        return {key: normalise_session(value) for key, value in node.items()}
    if isinstance(node, list):
        return [normalise_session(item) for item in node]
    if isinstance(node, str) and node.lower().startswith("x-hasura-"):
        return node.lower()
    return node


def own_rows_only(expression: Any) -> bool:
    """True when a boolean expression requires the caller's account (possibly in an _and)."""
    expression = normalise_session(expression)
    wanted = normalise_session(OWN_ROWS)
    if expression == wanted:
        return True
    if isinstance(expression, dict) and list(expression) == ["_and"]:
        return any(own_rows_only(part) for part in expression["_and"])
    return False


@pytest.fixture(scope="module")
async def table_columns(database_url: str) -> dict[str, set[str]]:
    """Columns of every tracked table in the migrated database."""
    conn = await db.connect(database_url)
    try:
        found: dict[str, set[str]] = {}
        for name in tracked_tables():
            schema, table = name.split(".")
            rows = await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = $2",
                schema,
                table,
            )
            found[name] = {row["column_name"] for row in rows}
        return found
    finally:
        await conn.close()


def test_metadata_layout_is_config_v3() -> None:
    config = load_yaml(HASURA_DIR / "config.yaml")
    assert config["version"] == 3
    assert config["metadata_directory"] == "metadata"
    assert load_yaml(METADATA_DIR / "version.yaml") == {"version": 3}
    for name in REQUIRED_FILES:
        assert (METADATA_DIR / name).is_file(), f"missing hasura/metadata/{name}"
    for name in LIST_FILES:
        assert isinstance(load_metadata_file(METADATA_DIR / name), list), name
    actions = load_metadata_file(METADATA_DIR / "actions.yaml")
    assert set(actions) == {"actions", "custom_types"}
    for name in ("allow_list.yaml", "cron_triggers.yaml", "inherited_roles.yaml"):
        assert load_metadata_file(METADATA_DIR / name) == [], name


def test_the_database_comes_from_the_environment() -> None:
    (default,) = databases()
    assert default["name"] == "default"
    assert default["kind"] == "postgres"
    url = default["configuration"]["connection_info"]["database_url"]
    assert url == {"from_env": "HASURA_GRAPHQL_DATABASE_URL"}


def test_the_anomaly_tables_are_tracked() -> None:
    assert set(tracked_tables()) == set(TABLES)


@pytest.mark.parametrize("name", TABLES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_user_sees_and_changes_only_its_account(name: str, operation: str) -> None:
    table = tracked_tables()[name]
    permission = permissions(table, operation).get("user")
    if operation not in USER_OPERATIONS[name]:
        assert permission is None, f"{name}: role user may not {operation}"
        return
    assert permission is not None, f"{name}: no {operation} permission for role user"
    if operation in ("select", "update", "delete"):
        assert own_rows_only(permission["filter"]), f"{name} {operation}: {permission['filter']}"
    if operation in ("insert", "update"):
        assert own_rows_only(permission["check"]), f"{name} {operation}: {permission['check']}"
    if operation == "insert":
        preset = normalise_session(permission.get("set") or {})
        assert preset.get("source_account_id") == ACCOUNT_VARIABLE
        assert "source_account_id" not in permission["columns"]


@pytest.mark.parametrize("name", TABLES)
def test_every_role_is_limited_to_its_account(name: str) -> None:
    """Whatever roles are added later, none reads or writes across accounts."""
    table = tracked_tables()[name]
    for operation in OPERATIONS:
        for role, permission in permissions(table, operation).items():
            for key in ("filter", "check"):
                if key in permission:
                    assert own_rows_only(permission[key]), f"{name} {operation} {role} {key}"


@pytest.mark.parametrize("name", TABLES)
def test_internal_columns_are_in_no_column_list(name: str) -> None:
    table = tracked_tables()[name]
    for operation in ("select", "insert", "update"):
        for role, permission in permissions(table, operation).items():
            columns = permission.get("columns")
            assert columns != "*", f"{name} {operation} {role}: list the columns"
            leaked = HIDDEN[name] & set(columns or [])
            assert not leaked, f"{name} {operation} {role} exposes {leaked}"


@pytest.mark.parametrize("name", TABLES)
def test_user_writes_only_what_is_the_users(name: str) -> None:
    table = tracked_tables()[name]
    for operation, allowed in WRITABLE.get(name, {}).items():
        columns = set(permissions(table, operation)["user"]["columns"])
        assert columns <= allowed, f"{name} {operation}: {sorted(columns - allowed)}"


@pytest.mark.parametrize("name", TABLES)
def test_user_reads_every_column_but_the_internal_ones(
    name: str, table_columns: dict[str, set[str]]
) -> None:
    select = set(permissions(tracked_tables()[name], "select")["user"]["columns"])
    missing = sorted(table_columns[name] - HIDDEN[name] - select)
    unknown = sorted(select - table_columns[name])
    assert not missing and not unknown, (name, "user cannot read", missing, "no such", unknown)


def _named_columns(table: dict[str, Any]) -> set[str]:
    """Every column of its own table that a table's metadata names."""
    named: set[str] = set()
    for operation in OPERATIONS:
        for permission in permissions(table, operation).values():
            columns = permission.get("columns")
            if isinstance(columns, list):
                named |= set(columns)
            named |= set((permission.get("set") or {}).keys())
            for key in ("filter", "check"):
                named |= _expression_columns(permission.get(key) or {})
    for kind in ("object_relationships", "array_relationships"):
        for relationship in table.get(kind) or []:
            using = relationship["using"]
            if "manual_configuration" in using:
                named |= set(using["manual_configuration"]["column_mapping"])
            elif isinstance(using.get("foreign_key_constraint_on"), str):
                named.add(using["foreign_key_constraint_on"])
    for relationship in table.get("remote_relationships") or []:
        definition = relationship["definition"]
        remote = definition.get("to_remote_schema") or definition
        named |= set(remote.get("lhs_fields") or remote.get("hasura_fields") or [])
    for trigger in table.get("event_triggers") or []:
        for spec in trigger["definition"].values():
            if isinstance(spec, dict):
                for key in ("columns", "payload"):
                    if isinstance(spec.get(key), list):
                        named |= set(spec[key])
    return named


def _expression_columns(expression: Any) -> set[str]:
    if isinstance(expression, dict):
        names: set[str] = set()
        for key, value in expression.items():
            if key in ("_and", "_or"):
                for part in value:
                    names |= _expression_columns(part)
            elif key == "_not":
                names |= _expression_columns(value)
            elif not key.startswith("_"):
                names.add(key)
        return names
    return set()


@pytest.mark.parametrize("name", TABLES)
def test_every_column_the_metadata_names_exists(
    name: str, table_columns: dict[str, set[str]]
) -> None:
    table = tracked_tables()[name]
    missing = _named_columns(table) - table_columns[name]
    assert not missing, f"{name}: metadata names columns the migrations do not create: {missing}"
    # the other side of manual relationships
    for kind in ("object_relationships", "array_relationships"):
        for relationship in table.get(kind) or []:
            manual = relationship["using"].get("manual_configuration")
            if manual:
                remote = manual["remote_table"]
                target = f"{remote['schema']}.{remote['name']}"
                assert target in table_columns, f"{relationship['name']}: {target} not tracked"
                far = set(manual["column_mapping"].values()) - table_columns[target]
                assert not far, f"{relationship['name']}: {target} has no {far}"


def test_relationships_join_within_one_account() -> None:
    """A detector's points and a point's detector never cross accounts."""
    for table in tracked_tables().values():
        for kind in ("object_relationships", "array_relationships"):
            for relationship in table.get(kind) or []:
                mapping = relationship["using"]["manual_configuration"]["column_mapping"]
                assert mapping.get("source_account_id") == "source_account_id", relationship


def test_a_prometheus_pull_detector_cannot_be_inserted_through_hasura() -> None:
    """Its bearer and headers must be split from the row and its pull position made,
    which only the REST API does: the insert check refuses the source type."""
    table = tracked_tables()["public.np_anomaly_detectors"]
    check = normalise_session(permissions(table, "insert")["user"]["check"])
    assert {"_not": {"metric_source": {"_contains": {"type": "prometheus"}}}} in check["_and"]


def test_points_inserted_anywhere_are_scored_by_the_event_trigger() -> None:
    table = tracked_tables()["public.np_anomaly_data_points"]
    (trigger,) = table["event_triggers"]
    definition = trigger["definition"]
    assert definition["insert"]["columns"] == "*"
    assert set(definition) - {"enable_manual"} == {"insert"}, "scores inserts only"
    retry = trigger["retry_conf"]
    assert retry["num_retries"] >= 3
    assert retry["interval_sec"] >= 1
    assert 1 <= retry["timeout_sec"] <= 300
    headers = {h["name"]: h for h in trigger["headers"]}
    assert headers["Authorization"] == {
        "name": "Authorization",
        "value_from_env": "NSELF_PLUGIN_BEARER",
    }
    assert trigger["webhook"] == "{{NSELF_ANOMALY_URL}}/hasura/events/score"
    # no other table fires webhooks
    detectors = tracked_tables()["public.np_anomaly_detectors"]
    assert not detectors.get("event_triggers")
