"""People and escalation policies: read and edit."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.client import Api, ApiFailure
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
    return _person_view(request, person)


CONTACT_TYPES = ("email", "webhook", "slack")
KEPT = ("id", "type", "address", "url", "delay_minutes", "rate_limit")


def _kept(method: dict[str, Any]) -> dict[str, Any]:
    """A current method as PATCH takes it back: with its id, so it keeps its secret."""
    return {k: method[k] for k in KEPT if method.get(k) is not None}


def _method_of(form: dict[str, str], current: dict[str, Any] | None) -> dict[str, Any]:
    """The method a contact form describes; a blank destination keeps the current one."""
    kind = form.get("type", "").strip()
    if kind not in CONTACT_TYPES:
        raise ValueError(f"type: choose one of {', '.join(CONTACT_TYPES)}")
    field = "address" if kind == "email" else "url"
    method: dict[str, Any] = {"type": kind}
    if current is not None:
        method.update({k: current[k] for k in ("id", "rate_limit") if current.get(k) is not None})
    destination = form.get("destination", "").strip()
    if not destination and current is not None and current.get("type") == kind:
        destination = current.get(field) or ""
    if not destination:
        raise ValueError("destination: an email address, or the URL of the webhook or Slack hook")
    method[field] = destination
    delay = form.get("delay_minutes", "").strip() or "0"
    try:
        method["delay_minutes"] = int(delay)
    except ValueError:
        raise ValueError("delay_minutes: a whole number of minutes (0 to 1440)") from None
    return method


def _person_view(
    request: Request, person: dict[str, Any], *, status_code: int = 200, **context: Any
) -> Response:
    return render(
        request,
        "person.html",
        status_code=status_code,
        title=person["name"],
        nav="people",
        person=person,
        types=CONTACT_TYPES,
        **context,
    )


async def _save_methods(
    request: Request,
    api: Api,
    person: dict[str, Any],
    methods: list[dict[str, Any]],
    *,
    form_id: str,
    values: dict[str, str],
    notice: str,
) -> Response:
    """PATCH the whole list; a 422 is shown beside the form it came from, and a new
    method's signing secret is shown in this answer (never in a URL, never again)."""
    try:
        saved = await api.oncall(
            "PATCH", f"/api/v1/people/{person['id']}", json={"contact_methods": methods}
        )
    except ApiFailure as exc:
        if exc.status not in (409, 422):
            raise
        return _person_view(
            request, person, status_code=exc.status,
            method_error={"form": form_id, "message": exc.message, "entered": values},
        )  # fmt: skip
    fresh = [m for m in saved.get("contact_methods", []) if m.get("signing_secret")]
    if not fresh:
        return redirect(request, f"/people/{person['id']}", notice=notice)
    secret = {"id": fresh[0].get("id"), "value": fresh[0]["signing_secret"]}
    saved["contact_methods"] = [{**m, "signing_secret": None} for m in saved["contact_methods"]]
    return _person_view(request, saved, notice=notice, secret=secret)


def _invalid(
    request: Request, person: dict[str, Any], form_id: str, form: dict[str, str], exc: Exception
) -> Response:
    return _person_view(
        request, person, status_code=422,
        method_error={"form": form_id, "message": str(exc), "entered": form},
    )  # fmt: skip


@router.post("/people/{person_id}/contact-methods")
async def add_contact_method(
    request: Request, api: ApiDep, form: FormDep, person_id: str
) -> Response:
    person = await api.oncall("GET", f"/api/v1/people/{person_id}")
    try:
        method = _method_of(form, None)
    except ValueError as exc:
        return _invalid(request, person, "+new", form, exc)
    methods = [_kept(m) for m in person["contact_methods"]] + [method]
    return await _save_methods(
        request, api, person, methods, form_id="+new", values=form, notice="contact method added"
    )


def _find(person: dict[str, Any], method_id: str) -> dict[str, Any]:
    for method in person["contact_methods"]:
        if method.get("id") == method_id:
            return method
    raise ApiFailure(404, f"no contact method {method_id!r}")


@router.post("/people/{person_id}/contact-methods/{method_id}")
async def edit_contact_method(
    request: Request, api: ApiDep, form: FormDep, person_id: str, method_id: str
) -> Response:
    person = await api.oncall("GET", f"/api/v1/people/{person_id}")
    current = _find(person, method_id)
    try:
        method = _method_of(form, current)
    except ValueError as exc:
        return _invalid(request, person, method_id, form, exc)
    methods = [method if m is current else _kept(m) for m in person["contact_methods"]]
    return await _save_methods(
        request, api, person, methods, form_id=method_id, values=form, notice="contact method saved"
    )


@router.post("/people/{person_id}/contact-methods/{method_id}/delete")
async def remove_contact_method(
    request: Request, api: ApiDep, form: FormDep, person_id: str, method_id: str
) -> Response:
    person = await api.oncall("GET", f"/api/v1/people/{person_id}")
    current = _find(person, method_id)
    methods = [_kept(m) for m in person["contact_methods"] if m is not current]
    return await _save_methods(
        request, api, person, methods, form_id=method_id, values={}, notice="contact method removed"
    )


@router.post("/people/{person_id}/contact-methods/{method_id}/rotate-secret")
async def rotate_contact_secret(
    request: Request, api: ApiDep, form: FormDep, person_id: str, method_id: str
) -> Response:
    path = f"/api/v1/people/{person_id}/contact-methods/{method_id}/rotate-secret"
    try:
        rotated = await api.oncall("POST", path)
    except ApiFailure as exc:
        if exc.status not in (409, 422):
            raise
        person = await api.oncall("GET", f"/api/v1/people/{person_id}")
        return _person_view(
            request, person, status_code=exc.status,
            method_error={"form": method_id, "message": exc.message, "entered": {}},
        )  # fmt: skip
    person = await api.oncall("GET", f"/api/v1/people/{person_id}")
    secret = {"id": rotated.get("id", method_id), "value": rotated["signing_secret"]}
    return _person_view(request, person, notice="secret rotated", secret=secret)


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
