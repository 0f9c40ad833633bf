"""Server-side keys and the public address, as links and calendar feeds need them.

The keys are derived from ``PLUGIN_SECRET`` (an HMAC of a fixed label), so there is no
further secret to keep: whoever has the plugin secret can act as any account anyway.
Changing ``PLUGIN_SECRET`` voids the links already sent and hides the URLs of existing
feeds (they keep working; revoke and create them again for a URL that is shown).
"""

from __future__ import annotations

import hashlib
import hmac

from services.common.settings import Settings
from services.oncall.links.tokens import Minter


def derived_key(settings: Settings, purpose: str) -> bytes | None:
    """The key for `purpose` ("links", "feeds"); None without a plugin secret."""
    secret = settings.secret_bytes()
    if not secret:
        return None
    return hmac.new(secret, f"nsentry/{purpose}/v1".encode(), hashlib.sha256).digest()


def public_base(settings: Settings, request_base: str | None = None) -> str:
    """Where clients reach the on-call service: ``PUBLIC_URL``, else the address a
    request came to, else the service's own address (local mode: 127.0.0.1:3840)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    if request_base:
        return request_base.rstrip("/")
    return f"http://{settings.host}:{settings.oncall_port}"


def link_minter(settings: Settings) -> Minter | None:
    """The worker's link minter; None without a plugin secret (then no links are sent)."""
    key = derived_key(settings, "links")
    return None if key is None else Minter(key, public_base(settings))
