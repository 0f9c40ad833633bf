"""The console's calls to nself-anomaly and nself-oncall, with the session's bearer."""

from __future__ import annotations

from typing import Any

import httpx

from services.console.sessions import Session


class ApiFailure(Exception):
    """A service answered an error; `status` and the envelope's message."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


class Api:
    """One signed-in person's view of both services."""

    def __init__(
        self, anomaly: httpx.AsyncClient, oncall: httpx.AsyncClient, session: Session
    ) -> None:
        self._clients = {"anomaly": anomaly, "oncall": oncall}
        self._headers = headers_for(session.via, session.bearer, session.account)

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._clients[service].request(
            method, path, params=clean, json=json, headers=self._headers
        )
        if response.status_code >= 400:
            raise failure_of(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    async def anomaly(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call("anomaly", method, path, **kwargs)

    async def oncall(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call("oncall", method, path, **kwargs)

    async def raw(self, service: str, path: str) -> httpx.Response:
        return await self._clients[service].get(path, headers=self._headers)


def headers_for(via: str, bearer: str, account: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {bearer}"}
    if via == "secret":
        headers["X-Hasura-Source-Account-Id"] = account
    return headers


def failure_of(response: httpx.Response) -> ApiFailure:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") or f"HTTP {response.status_code}"
    return ApiFailure(response.status_code, str(message), error.get("details"))
