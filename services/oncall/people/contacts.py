"""Contact method ids, their signing secrets and the notification rules that name them.

Every contact method has an id (client-chosen slug or generated). Each webhook and
Slack method has a Standard Webhooks secret in ``np_oncall.contact_secrets``, created
with the method (and shown in that answer only), replaced by ``rotate``, deleted with
the method. Notification rules name methods by id and must name existing ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from services.common.errors import Conflict
from services.oncall.delivery import signing
from services.oncall.people.models import NotificationRule, RotatedSecret
from services.oncall.validation import field_error, new_id, not_found, raise_field_errors

SIGNED = frozenset({"webhook", "slack"})


def _destination(method: Any) -> str:
    return getattr(method, "url", None) or getattr(method, "address", "") or ""


def assign_ids(methods: Sequence[Any], current: Sequence[Any] = ()) -> None:
    """Give each method its id: its own, else that of a current method of the same type
    and destination not yet taken, else a new one. Duplicate ids are a 422."""
    taken = {m.id for m in methods if m.id}
    for method in methods:
        if method.id:
            continue
        for old in current:
            same = old.type == method.type and _destination(old) == _destination(method)
            if same and old.id not in taken:
                method.id = old.id
                taken.add(old.id)
                break
        else:
            method.id = new_id()
            taken.add(method.id)
    seen: set[str] = set()
    errors = []
    for i, method in enumerate(methods):
        if method.id in seen:
            errors.append(field_error(("body", "contact_methods", i, "id"), "is used twice"))
        seen.add(method.id)
    raise_field_errors(errors)


def check_rules(rules: Iterable[NotificationRule], methods: Sequence[Any], head: str) -> None:
    """422 for a rule naming no contact method of the person."""
    ids = {m.id for m in methods}
    errors = []
    for i, rule in enumerate(rules):
        if rule.contact_method_id in ids:
            continue
        if head == "notification_rules":
            loc: tuple[Any, ...] = ("body", head, i, "contact_method_id")
            message = f"no contact method {rule.contact_method_id!r}"
        else:  # the rules stay as they are: the new list must keep what they name
            loc = ("body", head)
            message = (
                f"notification_rules.{i} names contact method {rule.contact_method_id!r}, "
                "which this list removes (change the rules in the same request)"
            )
        errors.append(field_error(loc, message))
    raise_field_errors(errors)


async def sync_secrets(
    conn: asyncpg.Connection, *, person_id: str, methods: Sequence[Any]
) -> dict[str, str]:
    """Secrets for the signed methods that lack one (new: returned, to be shown once);
    those of methods gone or no longer signed are deleted. One round trip each way."""
    signed = [m.id for m in methods if m.type in SIGNED]
    rows = await conn.fetch(
        """
        WITH gone AS (
            DELETE FROM np_oncall.contact_secrets
            WHERE person_id = $1 AND NOT (contact_method_id = ANY($2::text[]))
        )
        SELECT contact_method_id FROM np_oncall.contact_secrets
        WHERE person_id = $1 AND contact_method_id = ANY($2::text[])
        """,
        person_id,
        signed,
    )
    have = {r["contact_method_id"] for r in rows}
    fresh = {mid: signing.new_secret() for mid in signed if mid not in have}
    if fresh:
        await conn.execute(
            """
            INSERT INTO np_oncall.contact_secrets
                (source_account_id, person_id, contact_method_id, secret)
            SELECT current_setting('app.source_account_id'), $1, u.m, u.s
            FROM unnest($2::text[], $3::text[]) AS u(m, s)
            """,
            person_id,
            list(fresh),
            list(fresh.values()),
        )
    return fresh


async def rotate(conn: asyncpg.Connection, *, person_id: str, method_id: str) -> RotatedSecret:
    """A new secret for a webhook or Slack method; the old one stops verifying at once."""
    row = await conn.fetchrow(
        "SELECT m ->> 'type' AS type FROM np_oncall.people p CROSS JOIN LATERAL "
        "jsonb_array_elements(CASE WHEN jsonb_typeof(p.contact_methods) = 'array' "
        "THEN p.contact_methods ELSE '[]' END) AS m "
        "WHERE p.id = $1 AND m ->> 'id' = $2 FOR UPDATE OF p",
        person_id,
        method_id,
    )
    if row is None:
        exists = await conn.fetchval("SELECT 1 FROM np_oncall.people WHERE id = $1", person_id)
        if exists is None:
            raise not_found("person", person_id)
        raise not_found("contact method", method_id)
    if row["type"] not in SIGNED:
        raise Conflict(
            f"a {row['type']} contact method is not signed: it has no secret",
            details={"type": row["type"]},
        )
    secret = signing.new_secret()
    await conn.execute(
        """
        INSERT INTO np_oncall.contact_secrets
            (source_account_id, person_id, contact_method_id, secret)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3)
        ON CONFLICT (source_account_id, person_id, contact_method_id)
        DO UPDATE SET secret = EXCLUDED.secret, created_at = now()
        """,
        person_id,
        method_id,
        secret,
    )
    return RotatedSecret(id=method_id, signing_secret=secret)
