"""GraphQL limits (issue 12 item 6): tokens, cost, depth and aliases are refused before
anything runs; one transaction per request; a statement timeout.

Real embedded Postgres; the app's pool is wrapped only to count acquisitions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from services.common import db
from services.common.settings import Settings
from services.oncall.app import create_app
from tests.conftest import make_settings, serve_app
from tests.oncall.graphql.test_schema import G, world  # noqa: F401 (the fixture)
from tests.oncall.helpers import FakeClock

pytestmark = pytest.mark.usefixtures("world")
WINDOW = {"since": "2026-11-22T00:00:00Z", "until": "2026-11-30T00:00:00Z"}


class CountingPool:
    """The app's asyncpg pool, counting the connections requests take from it."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.acquired = 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquired += 1
        return self.pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class Served:
    def __init__(self, http: httpx.AsyncClient, pool: CountingPool) -> None:
        self.http = http
        self.pool = pool

    async def post(self, query: str, **variables: Any) -> tuple[dict[str, Any], int]:
        """The answer and how many connections it took from the pool."""
        before = self.pool.acquired
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=G
        )
        assert response.status_code == 200, response.text
        return response.json(), self.pool.acquired - before


async def _serve(settings: Settings, clock: FakeClock) -> AsyncIterator[Served]:
    app = create_app(settings, clock=clock)
    async with serve_app(app) as http:
        real = app.state.pool
        app.state.pool = counting = CountingPool(real)
        try:
            yield Served(http, counting)
        finally:
            app.state.pool = real


@pytest.fixture(scope="module")
async def default(oncall_settings: Settings, clock: FakeClock) -> AsyncIterator[Served]:
    """The app with the default limits."""
    async for served in _serve(oncall_settings, clock):
        yield served


@pytest.fixture(scope="module")
async def tight(database_url: str, clock: FakeClock) -> AsyncIterator[Served]:
    """An app with small limits, to test each at its edge."""
    settings = make_settings(
        database_url,
        graphql_max_depth=3,
        graphql_max_aliases=3,
        graphql_max_cost=200,
        graphql_statement_timeout_ms=300,
    )
    async for served in _serve(settings, clock):
        yield served


def refused(answer: dict[str, Any], limit: str) -> str:
    assert answer["data"] is None, answer
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "query_too_complex", error
    assert error["extensions"]["limit"] == limit, error
    return str(error["message"])


async def test_two_thousand_aliases_are_refused_before_anything_runs(default: Served) -> None:
    for body in ("schedules { id }", 'currentOncall(scheduleId: "g-sched") { scheduleId }'):
        query = "{ " + " ".join(f"a{i}: {body}" for i in range(2000)) + " }"
        started = time.perf_counter()
        answer, acquired = await default.post(query)
        elapsed = time.perf_counter() - started
        assert "more than 10000 tokens" in refused(answer, "tokens")
        assert acquired == 0  # no transaction, no statement
        assert elapsed < 2.0, elapsed  # was 2 to 7 s; about 0.1 s (parsing 10,000 tokens)
    # short enough for the tokens: the alias limit
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(2000)) + " }"
    answer, acquired = await default.post(query)
    assert refused(answer, "aliases") == "2000 aliases found. Allowed: 200"
    assert acquired == 0


async def test_depth_is_refused_with_its_limit(default: Served, tight: Served) -> None:
    # the schema has no cycle: only invalid fields nest deeper than 4, refused before
    # validation by the depth limit
    deep = "{ " + "a { " * 10 + "b" + " }" * 11
    message = refused((await default.post(deep))[0], "depth")
    assert "exceeds maximum operation depth of 8" in message
    nested = 'query Deep { schedule(id: "g-sched") { oncall { next { person { id } } } } }'
    answer, acquired = await tight.post(nested)
    assert "'Deep' exceeds maximum operation depth of 3" in refused(answer, "depth")
    assert acquired == 0
    at_limit = 'query { schedule(id: "g-sched") { oncall { next { start } } } }'
    answer, _ = await tight.post(at_limit)
    assert "errors" not in answer and answer["data"]["schedule"]["oncall"]["next"]
    # the default limit admits the deepest path of the schema
    answer, _ = await default.post(nested)
    assert "errors" not in answer and answer["data"]["schedule"]["oncall"]["next"]["person"]


async def test_cost_budget(default: Served, tight: Served) -> None:
    query = """query($since: DateTime!, $until: DateTime!) {
      schedules(limit: 1000) { id shifts(since: $since, until: $until) { coverage } } }"""
    answer, acquired = await default.post(query, **WINDOW)
    assert "exceeds the budget of 10000" in refused(answer, "cost")
    assert acquired == 0
    # the limit given as a variable counts as its value
    by_variable = """query($n: Int!, $since: DateTime!, $until: DateTime!) {
      schedules(limit: $n) { id shifts(since: $since, until: $until) { coverage } } }"""
    answer, _ = await default.post(by_variable, n=1000, **WINDOW)
    refused(answer, "cost")
    answer, acquired = await default.post(by_variable, n=100, **WINDOW)
    assert "errors" not in answer, answer
    assert answer["data"]["schedules"][0]["shifts"]["coverage"] == 1.0
    assert acquired == 1
    # a list without nested resolvers is cheap whatever its limit
    answer, _ = await default.post("{ schedules(limit: 1000) { id name } }")
    assert answer["data"]["schedules"] == [{"id": "g-sched", "name": "G"}]
    # at the edge: schedules 10 + n x (id 1 + oncall 10 + scheduleId 1): 16 -> 202 > 200,
    # 15 -> 190 fits
    edge = "query($n: Int!) { schedules(limit: $n) { id oncall { scheduleId } } }"
    refused((await tight.post(edge, n=16))[0], "cost")
    answer, _ = await tight.post(edge, n=15)
    assert answer["data"]["schedules"][0]["oncall"]["scheduleId"] == "g-sched"


async def test_hasura_batches_and_introspection_fit(default: Served) -> None:
    """Hasura sends a remote join as one query with an alias per distinct argument
    (`f0`, `f1`, ...): 200 of them fit, and take one connection."""
    fields = " ".join(
        f'f{i}: policy(id: "g-pol") {{ currentResponders {{ id name email __typename }} }}'
        for i in range(200)
    )
    answer, acquired = await default.post("query { " + fields + " }")
    assert "errors" not in answer, answer
    assert len(answer["data"]) == 200
    assert answer["data"]["f0"] == answer["data"]["f199"]
    assert acquired == 1
    answer, _ = await default.post("query { " + fields + ' f200: policy(id: "x") { id } }')
    refused(answer, "aliases")
    answer, acquired = await default.post(get_introspection_query(descriptions=True))
    assert "errors" not in answer and answer["data"]["__schema"]["queryType"]["name"] == "Query"
    assert acquired == 0


async def test_nested_fields_share_one_connection(default: Served) -> None:
    query = """query($since: DateTime!, $until: DateTime!) {
      schedules { id oncall { scheduleId } shifts(since: $since, until: $until) { coverage } }
      a: schedule(id: "g-sched") { oncall { scheduleId } }
      b: currentOncall(scheduleId: "g-sched") { scheduleId }
      policy(id: "g-pol") { currentResponders { id } }
    }"""
    answer, acquired = await default.post(query, **WINDOW)
    assert "errors" not in answer, answer
    assert answer["data"]["b"]["scheduleId"] == "g-sched"
    assert acquired == 1  # was one per resolver: 7


async def test_statement_timeout(tight: Served, database_url: str) -> None:
    """A statement that waits past the timeout (here on a lock another session holds)
    answers a clean `timeout` error, and the setting does not outlive the request."""
    owner = await db.connect(database_url)
    try:
        await owner.execute("BEGIN")
        await owner.execute("LOCK TABLE np_oncall.schedules IN ACCESS EXCLUSIVE MODE")
        started = time.perf_counter()
        answer, acquired = await asyncio.wait_for(tight.post("{ schedules { id } }"), 10)
        elapsed = time.perf_counter() - started
    finally:
        await owner.execute("ROLLBACK")
        await owner.close()
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "timeout", "timeout_ms": 300}, error
    assert "statement timeout (300 ms)" in error["message"]
    assert 0.3 <= elapsed < 5, elapsed
    assert acquired == 1
    async with tight.pool.pool.acquire() as conn:  # back in the pool: no timeout left
        assert await conn.fetchval("SHOW statement_timeout") == "0"
    answer, _ = await tight.post("{ schedules { id } }")
    assert answer["data"]["schedules"] == [{"id": "g-sched"}]
