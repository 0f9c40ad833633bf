"""Escalation policy routes."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Tx
from services.oncall.policies import service
from services.oncall.policies.models import Policy, PolicyCreate, PolicyUpdate
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/policies", tags=["policies"], responses=ERRORS)


@router.get("", summary="List escalation policies", response_model=Page[Policy])
async def list_policies(conn: Tx, limit: Limit = 50, cursor: Cursor = None) -> Page[Policy]:
    return await service.get_all(conn, limit=limit, cursor=cursor)


@router.post("", status_code=201, summary="Create an escalation policy", response_model=Policy)
async def create_policy(body: PolicyCreate, conn: Tx) -> Policy:
    return await service.create(conn, body=body)


@router.get("/{policy_id}", summary="Get an escalation policy", response_model=Policy)
async def get_policy(policy_id: str, conn: Tx) -> Policy:
    return await service.get(conn, policy_id=policy_id)


@router.patch("/{policy_id}", summary="Update an escalation policy", response_model=Policy)
async def update_policy(policy_id: str, body: PolicyUpdate, conn: Tx) -> Policy:
    return await service.update(conn, policy_id=policy_id, body=body)


@router.delete(
    "/{policy_id}",
    status_code=204,
    summary="Delete an escalation policy (open alerts finish with the policy they started with)",
)
async def delete_policy(policy_id: str, conn: Tx) -> None:
    await service.delete(conn, policy_id=policy_id)
