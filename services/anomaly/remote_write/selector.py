"""PURE: Prometheus series selectors (``http_requests_total{job="api", code=~"5.."}``).

A remote-write detector names the series it watches with a selector, as PromQL
writes one: an optional metric name followed by ``{...}`` label matchers, each
``name op "value"`` with ``op`` one of ``=``, ``!=``, ``=~``, ``!~``. ``__name__``
is a label like any other (``{__name__=~"http_.*"}``). As in Prometheus:

* a regular expression is anchored at both ends (``=~"5.."`` matches ``500``,
  not ``1500``); it is Python's ``re`` syntax, which agrees with RE2 on
  everything but exotic constructs;
* a label the series does not carry has the empty value (``{env=""}`` matches
  series without ``env``, ``{env!=""}`` those with one);
* a selector must hold at least one matcher that does not match the empty
  string (``{env=~".*"}`` alone would select every series ever written).

Values are double-, single- or back-quoted strings with Go's escapes (``\\n``,
``\\"``, ``\\\\``...); back quotes take no escapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.anomaly.series import LABEL_NAME, MAX_NAME_LENGTH

MAX_SELECTOR_LENGTH = 4096
MAX_MATCHERS = 32
OPERATORS = ("=~", "!~", "!=", "=")

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SPACE = re.compile(r"\s*")
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


class SelectorError(ValueError):
    """A selector that does not parse; the message says where and why."""


@dataclass(frozen=True)
class Matcher:
    """One ``name op "value"`` (``regex`` compiled for ``=~`` and ``!~``)."""

    name: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """A parsed selector: a series matches when every matcher does."""

    text: str
    matchers: tuple[Matcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        for m in self.matchers:
            if not m.matches(labels):
                return False
        return True


def _matcher(name: str, op: str, value: str) -> Matcher:
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise SelectorError(f"invalid regular expression {value!r} for {name}: {exc}") from None
        return Matcher(name, op, value, regex)
    return Matcher(name, op, value)


def _string(text: str, pos: int) -> tuple[str, int]:
    """The quoted string starting at ``pos``, and the position after it."""
    if pos >= len(text) or text[pos] not in "\"'`":
        raise SelectorError(f"expected a quoted label value at position {pos}")
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\" and quote != "`":
            i += 1
            if i >= len(text):
                break
            esc = text[i]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
            elif esc in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[esc]
                digits = text[i + 1 : i + 1 + width]
                if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise SelectorError(f"invalid \\{esc} escape at position {i - 1}")
                out.append(chr(int(digits, 16)))
                i += width
            else:
                raise SelectorError(f"unknown escape \\{esc} at position {i - 1}")
        elif ch == "\n" and quote != "`":
            raise SelectorError(f"unterminated string at position {pos}")
        else:
            out.append(ch)
        i += 1
    raise SelectorError(f"unterminated string at position {pos}")


def _skip(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    assert match is not None
    return match.end()


def parse_selector(text: str) -> Selector:
    """Parse a series selector; SelectorError (a ValueError) says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise SelectorError('a selector is required, e.g. http_requests_total{job="api"}')
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"a selector is at most {MAX_SELECTOR_LENGTH} characters")
    matchers: list[Matcher] = []
    pos = _skip(text, 0)
    name = _METRIC_NAME.match(text, pos)
    if name is not None:
        matchers.append(Matcher("__name__", "=", name.group()))
        pos = _skip(text, name.end())
    if pos < len(text):
        if text[pos] != "{":
            raise SelectorError(f"expected '{{' at position {pos}")
        pos = _skip(text, pos + 1)
        while pos < len(text) and text[pos] != "}":
            label = _LABEL.match(text, pos)
            if label is None:
                raise SelectorError(f"expected a label name at position {pos}")
            label_name = label.group()
            if len(label_name) > MAX_NAME_LENGTH:
                raise SelectorError(f"label name over {MAX_NAME_LENGTH} characters")
            pos = _skip(text, label.end())
            op = next((o for o in OPERATORS if text.startswith(o, pos)), None)
            if op is None:
                raise SelectorError(
                    f"expected one of = != =~ !~ after {label_name} at position {pos}"
                )
            value, pos = _string(text, _skip(text, pos + len(op)))
            matchers.append(_matcher(label_name, op, value))
            if len(matchers) > MAX_MATCHERS:
                raise SelectorError(f"at most {MAX_MATCHERS} matchers")
            pos = _skip(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = _skip(text, pos + 1)
            elif pos < len(text) and text[pos] != "}":
                raise SelectorError(f"expected ',' or '}}' at position {pos}")
        if pos >= len(text):
            raise SelectorError("unclosed '{'")
        pos = _skip(text, pos + 1)
        if pos < len(text):
            raise SelectorError(f"unexpected {text[pos : pos + 20]!r} at position {pos}")
    if name is not None and any(m.name == "__name__" for m in matchers[1:]):
        raise SelectorError("metric name given twice (before the braces and as __name__)")
    if not any(not m.matches({}) for m in matchers):
        raise SelectorError(
            "a selector needs at least one matcher that does not match the empty string "
            '(a metric name, or a label matcher such as job="api")'
        )
    assert all(LABEL_NAME.match(m.name) for m in matchers)
    return Selector(text, tuple(matchers))
