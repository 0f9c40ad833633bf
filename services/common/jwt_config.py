"""Hasura's JWT secret format (HASURA_GRAPHQL_JWT_SECRET) parsed into a config."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509

HMAC_ALGORITHMS = {"HS256", "HS384", "HS512"}
ASYMMETRIC_ALGORITHMS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "Ed25519", "EdDSA"}
DEFAULT_CLAIMS_NAMESPACE = "https://hasura.io/jwt/claims"


@dataclass(frozen=True)
class JwtConfig:
    algorithm: str
    key: Any  # str for HMAC, a public key object or PEM string otherwise
    claims_namespace: str = DEFAULT_CLAIMS_NAMESPACE
    claims_path: tuple[str, ...] | None = None  # from claims_namespace_path
    claims_stringified: bool = False
    audience: str | list[str] | None = None
    issuer: str | None = None
    leeway_seconds: int = 0

    def claims_of(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The Hasura claims object inside a decoded token, or None if absent."""
        node: Any = payload
        if self.claims_path is not None:
            for part in self.claims_path:
                if not isinstance(node, dict) or part not in node:
                    return None
                node = node[part]
        else:
            node = payload.get(self.claims_namespace)
        if self.claims_stringified and isinstance(node, str):
            try:
                node = json.loads(node)
            except ValueError:
                return None
        return node if isinstance(node, dict) else None


_PATH_TOKEN = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[\s*['"]([^'"]+)['"]\s*\]""")


def parse_claims_path(path: str) -> tuple[str, ...]:
    """Parse the JSONPath subset Hasura accepts: `$.a.b`, `$.a['b.c']`, `$` for the root."""
    if not path.startswith("$"):
        raise ValueError(f"claims_namespace_path must start with '$': {path!r}")
    parts: list[str] = []
    position = 1
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match:
            raise ValueError(f"claims_namespace_path is not a simple JSON path: {path!r}")
        parts.append(match.group(1) or match.group(2))
        position = match.end()
    return tuple(parts)


def _load_public_key(text: str) -> Any:
    if "BEGIN CERTIFICATE" in text:
        return x509.load_pem_x509_certificate(text.encode()).public_key()
    return text


def parse_jwt_secret(raw: str) -> JwtConfig:
    """Parse Hasura's JSON secret; raise ValueError with a one-line reason when unusable."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("HASURA_GRAPHQL_JWT_SECRET is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("HASURA_GRAPHQL_JWT_SECRET must be a JSON object")
    if "jwk_url" in data and "key" not in data:
        raise ValueError("jwk_url is not supported here; give 'type' and 'key'")
    algorithm = data.get("type")
    key = data.get("key")
    if algorithm not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"unsupported JWT type {algorithm!r}")
    if not isinstance(key, str) or not key:
        raise ValueError("JWT 'key' must be a non-empty string")
    if algorithm in HMAC_ALGORITHMS and len(key.encode()) < 32:
        raise ValueError("HMAC JWT key must be at least 32 bytes")
    if algorithm in ASYMMETRIC_ALGORITHMS:
        try:
            key = _load_public_key(key)
        except ValueError as exc:
            raise ValueError(f"JWT key is not a PEM public key or certificate: {exc}") from None
    if "claims_namespace" in data and "claims_namespace_path" in data:
        raise ValueError("give claims_namespace or claims_namespace_path, not both")
    claims_path = (
        parse_claims_path(data["claims_namespace_path"])
        if "claims_namespace_path" in data
        else None
    )
    claims_format = data.get("claims_format", "json")
    if claims_format not in {"json", "stringified_json"}:
        raise ValueError(f"unsupported claims_format {claims_format!r}")
    skew = data.get("allowed_skew", 0)
    if not isinstance(skew, int) or skew < 0:
        raise ValueError("allowed_skew must be a non-negative integer (seconds)")
    return JwtConfig(
        algorithm="EdDSA" if algorithm == "Ed25519" else algorithm,  # pyjwt's name for it
        key=key,
        claims_namespace=data.get("claims_namespace", DEFAULT_CLAIMS_NAMESPACE),
        claims_path=claims_path,
        claims_stringified=claims_format == "stringified_json",
        audience=data.get("audience"),
        issuer=data.get("issuer"),
        leeway_seconds=skew,
    )
