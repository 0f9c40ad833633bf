"""People and escalation policies: read and edit."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.client import ApiFailure
from services.console.web import ApiDep, FormDep, redirect, render

router = APIRouter()


@router.get("/people")
async def people_page(request: Request, api: ApiDep) -> Response:
    people, policies, schedules = await asyncio.gather(
        api.oncall("GET", "/api/v1/people", params={"limit": 1000}),
        api.oncall("GET", "/api/v1/policies", params={"limit": 1000}),
        api.oncall("GET", "/api/v1/schedules", params={"limit": 1000}),
    )
    return render(
        request,
        "people.html",
        title="People and policies",
        nav="people",
        people=people["data"],
        policies=policies["data"],
        schedules=schedules["data"],
    )


@router.get("/people/{person_id}")
async def person_page(request: Request, api: ApiDep, person_id: str) -> Response:
    person = await api.oncall("GET", f"/api/v1/people/{person_id}")
    return render(request, "person.html", title=person["name"], nav="people", person=person)


@router.post("/people/{person_id}")
async def save_person(request: Request, api: ApiDep, form: FormDep, person_id: str) -> Response:
    patch = {k: form[k].strip() for k in ("name", "email", "timezone") if form.get(k, "").strip()}
    try:
        await api.oncall("PATCH", f"/api/v1/people/{person_id}", json=patch)
    except ApiFailure as exc:
        if exc.status != 422:
            raise
        return redirect(request, f"/people/{person_id}", error=f"refused: {exc.message}")
    return redirect(request, f"/people/{person_id}", notice="saved")


def steps_text(steps: list[dict[str, Any]]) -> str:
    """One line per step: `15: schedule:primary, person:bob`."""
    return "\n".join(
        f"{s['delay_minutes']}: " + ", ".join(f"{t['type']}:{t['id']}" for t in s["targets"])
        for s in steps
    )


def parse_steps(text: str) -> list[dict[str, Any]]:
    steps = []
    for line in text.splitlines():
        if not line.strip():
            continue
        delay, _, targets = line.partition(":")
        items = []
        for target in targets.split(","):
            kind, _, ident = target.strip().partition(":")
            if kind not in ("person", "schedule") or not ident:
                raise ValueError(f"target {target.strip()!r}: write person:<id> or schedule:<id>")
            items.append({"type": kind, "id": ident.strip()})
        steps.append({"delay_minutes": int(delay.strip()), "targets": items})
    return steps


@router.get("/policies/{policy_id}")
async def policy_page(request: Request, api: ApiDep, policy_id: str) -> Response:
    policy = await api.oncall("GET", f"/api/v1/policies/{policy_id}")
    return render(
        request,
        "policy.html",
        title=policy["name"],
        nav="people",
        policy=policy,
        steps=steps_text(policy["steps"]),
    )


@router.post("/policies/{policy_id}")
async def save_policy(request: Request, api: ApiDep, form: FormDep, policy_id: str) -> Response:
    try:
        patch: dict[str, Any] = {"steps": parse_steps(form.get("steps", ""))}
        if form.get("repeat", "").strip():
            patch["repeat"] = int(form["repeat"])
    except ValueError as exc:
        return redirect(request, f"/policies/{policy_id}", error=str(exc))
    if form.get("name", "").strip():
        patch["name"] = form["name"].strip()
    try:
        await api.oncall("PATCH", f"/api/v1/policies/{policy_id}", json=patch)
    except ApiFailure as exc:
        if exc.status != 422:
            raise
        return redirect(request, f"/policies/{policy_id}", error=f"refused: {exc.message}")
    return redirect(request, f"/policies/{policy_id}", notice="saved")
