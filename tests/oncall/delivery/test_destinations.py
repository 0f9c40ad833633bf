"""Which webhook and Slack destinations may be called: literal URLs and resolved names."""

from __future__ import annotations

import ipaddress

import pytest

from services.oncall.delivery.destinations import DestinationPolicy


@pytest.mark.parametrize(
    ("url", "allowed", "local", "ok"),
    [
        ("https://hooks.example.com/x", [], False, True),
        ("http://8.8.8.8/x", [], False, True),
        ("http://127.0.0.1:9/x", [], False, False),
        ("http://127.0.0.1:9/x", [], True, True),
        ("http://localhost/x", [], False, False),
        ("http://localhost/x", [], True, True),
        ("http://[::1]/x", [], False, False),
        ("http://[::ffff:10.0.0.1]/x", [], False, False),
        ("http://10.1.2.3/x", [], False, False),
        ("http://10.1.2.3/x", ["10.0.0.0/8"], False, True),
        ("http://169.254.169.254/latest/meta-data", [], True, False),
        ("http://192.168.1.5/x", ["192.168.1.5"], False, True),
        ("http://internal.corp/x", ["internal.corp"], False, True),
        ("http://0.0.0.0/x", [], False, False),
        ("ftp://example.com/x", [], False, False),
        ("http://user:pw@example.com/x", [], False, False),
        ("http:///nohost", [], False, False),
    ],
)
def test_destination_policy(url: str, allowed: list[str], local: bool, ok: bool) -> None:
    policy = DestinationPolicy.from_settings(allowed, local_mode=local)
    assert (policy.literal_problem(url) is None) is ok


async def test_resolved_names_are_checked_on_every_address() -> None:
    strict = DestinationPolicy.from_settings([], local_mode=False)
    problem = await strict.resolved_problem("http://localhost./x")
    assert problem is not None and "ONCALL_ALLOWED_DESTINATIONS" in problem
    listed = DestinationPolicy.from_settings(["127.0.0.0/8", "::1/128"], local_mode=False)
    assert listed.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert await listed.resolved_problem("http://127.0.0.1:1/x") is None
    assert "cannot resolve" in (
        await strict.resolved_problem("http://no-such-host.invalid/x") or ""
    )
