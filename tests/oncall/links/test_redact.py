"""No token in the access log: the paths of links, feeds and integration keys are
redacted in uvicorn's access log records."""

from __future__ import annotations

import logging

from services.oncall.links import redact


def test_tokens_in_access_log_records_are_redacted() -> None:
    redact.install()
    redact.install()  # idempotent
    access = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, redact.RedactTokens) for f in access.filters) == 1
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/api/v1/links/eyJh.c2ln?x=1", "1.1", 200),
        None,
    )
    [found] = [f for f in access.filters if isinstance(f, redact.RedactTokens)]
    assert found.filter(record)
    assert "eyJh" not in record.getMessage() and "/api/v1/links/[redacted]" in record.getMessage()
    assert redact.redact("/api/v1/feeds/ncf_abc.ics") == "/api/v1/feeds/[redacted]"
    assert (
        redact.redact("/api/v1/integrations/generic?a=1&token=nsk_secret&b=2")
        == "/api/v1/integrations/generic?a=1&token=[redacted]&b=2"
    )
    assert redact.redact("/api/v1/alerts/123") == "/api/v1/alerts/123"
