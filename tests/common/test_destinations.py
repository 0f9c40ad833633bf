"""Which webhook and Slack destinations may be called: literal URLs and resolved names."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from services.common.destinations import DestinationPolicy


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


# every numeric form of an address is the address it is (as getaddrinfo and browsers read it)
NUMERIC = [
    ("http://2852039166/", "169.254.169.254"),
    ("http://0xa9fea9fe/", "169.254.169.254"),
    ("http://0xA9FEA9FE/", "169.254.169.254"),
    ("http://0251.0376.0251.0376/", "169.254.169.254"),
    ("http://169.254.43518/", "169.254.169.254"),
    ("http://0xa9.0376.43518/", "169.254.169.254"),
    ("http://169.254.169.254./", "169.254.169.254"),
    ("http://0x7f.1/", "127.0.0.1"),
    ("http://127.1/", "127.0.0.1"),
    ("http://0177.0.0.01/", "127.0.0.1"),
    ("http://2130706433:8080/", "127.0.0.1"),
    ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", "127.0.0.1"),
    ("http://0/", "0.0.0.0"),
    ("http://167772161/", "10.0.0.1"),
    ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
    ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254"),
    ("http://[2002:7f00:1::]/", "127.0.0.1"),  # 6to4 of 127.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254"),  # NAT64
]


@pytest.mark.parametrize(("url", "address"), NUMERIC)
def test_numeric_forms_are_judged_as_the_address_they_are(url: str, address: str) -> None:
    strict = DestinationPolicy.from_settings([], local_mode=False)
    problem = strict.literal_problem(url)
    assert problem is not None and "ONCALL_ALLOWED_DESTINATIONS" in problem
    listed = DestinationPolicy.from_settings(
        [f"{address}/32", "::/0"] if address != "0.0.0.0" else ["0.0.0.0/8"], local_mode=False
    )
    assert listed.literal_problem(url) is None


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://2130706433:8080/x?y=1#f", "http://127.0.0.1:8080/x?y=1#f"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("https://0177.0.0.01:443/h", "https://127.0.0.1:443/h"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/"),
        ("http://[::ffff:7f00:1]/", "http://[::ffff:127.0.0.1]/"),
        ("https://Hooks.Example.com/X", "https://Hooks.Example.com/X"),  # names as written
    ],
)
def test_numeric_hosts_are_stored_in_canonical_form(url: str, canonical: str) -> None:
    policy = DestinationPolicy.from_settings(["127.0.0.0/8", "::ffff:0:0/96"], local_mode=False)
    assert policy.literal_problem(url) is None
    assert policy.canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url", ["http://1.2.3.256/", "http://1.2.3.4.5/", "http://foo.123/", "http://0x1g.0x10/"]
)
def test_hosts_that_end_in_a_number_but_are_no_address_are_refused(url: str) -> None:
    policy = DestinationPolicy.from_settings([], local_mode=False)
    assert policy.literal_problem(url) in (
        "is not a valid IPv4 address",
        "is not a valid host name",
    )


async def test_the_check_resolves_once_and_judges_every_address() -> None:
    answers = {
        "pub.test": ["93.184.216.34", "2606:2800:220:1::1"],
        "mix.test": ["8.8.8.8", "10.0.0.1"],
    }
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers[host]

    policy = DestinationPolicy.from_settings([], local_mode=False, resolver=resolver)
    checked = await policy.check("https://PUB.test/x")
    assert checked.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert checked.url == "https://PUB.test/x" and asked == [("pub.test", 443)]
    problem = await policy.resolved_problem("http://mix.test:81/")
    assert problem is not None and "mix.test (10.0.0.1)" in problem
    # a numeric host is not resolved: its one address is the destination
    literal = await policy.check("http://8.8.8.8:99/")
    assert literal.addresses == ("8.8.8.8",) and asked[-1] == ("mix.test", 81)
    # a name the operator listed is trusted whatever it resolves to (and still pinned)
    answers["inside.corp"] = ["10.1.2.3"]
    trusted = DestinationPolicy.from_settings(["inside.corp"], local_mode=False, resolver=resolver)
    assert (await trusted.check("http://inside.corp/")).addresses == ("10.1.2.3",)


async def test_resolver_failures_are_transient_only_when_they_may_pass() -> None:
    from services.common.destinations import Refused

    async def again(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return []

    async def nothing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    for resolver, transient in ((again, True), (hangs, True), (nothing, False)):
        policy = DestinationPolicy(resolver=resolver, resolve_seconds=0.05)
        with pytest.raises(Refused) as refused:
            await policy.check("http://x.test/")
        assert refused.value.transient is transient
        assert "cannot resolve 'x.test'" in refused.value.reason
