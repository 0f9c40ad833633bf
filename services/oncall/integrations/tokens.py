"""Integration tokens (pure): minted, parsed and checked; never stored in clear.

A token is ``nsk_`` + a 12-character selector + a 32-character secret, lower-case
base32 (48 characters: it fits an email address's local part, so the same token
names an email key as ``<token>@<domain>``). The selector is the public half an
inbound request looks its key up by; the SHA-256 of the whole token is what is
stored, compared in constant time (``hmac.compare_digest``, as the plugin secret is
in ``services/common/auth.py``). The secret carries 160 random bits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

PREFIX = "nsk_"
SELECTOR_LENGTH = 12
SECRET_LENGTH = 32
PATTERN = re.compile(rf"^{PREFIX}([a-z2-7]{{{SELECTOR_LENGTH}}})[a-z2-7]{{{SECRET_LENGTH}}}$")
# compared against when no key has the selector, so that an unknown selector costs the
# same hash and compare as a wrong secret
_DUMMY_HASH = hashlib.sha256(b"nsentry: no such integration key").digest()


class Minted(NamedTuple):
    token: str
    selector: str
    token_hash: bytes


def _random(length: int) -> str:
    raw = secrets.token_bytes((length * 5 + 7) // 8)
    return base64.b32encode(raw).decode().lower().rstrip("=")[:length]


def mint() -> Minted:
    selector = _random(SELECTOR_LENGTH)
    token = PREFIX + selector + _random(SECRET_LENGTH)
    return Minted(token, selector, digest(token))


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def selector_of(token: str) -> str | None:
    """The selector of a well-formed token (case-insensitive: mail may upper-case it)."""
    found = PATTERN.fullmatch(token.strip().lower())
    return found.group(1) if found else None


def matches(token: str, stored_hash: bytes | None) -> bool:
    """Whether `token` is the one whose hash is `stored_hash` (constant time)."""
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    ok = hmac.compare_digest(digest(token.strip().lower()), expected)
    return ok and stored_hash is not None
