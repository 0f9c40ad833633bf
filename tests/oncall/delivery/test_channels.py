"""How an HTTP answer classifies a delivery attempt: sent, retry or permanent."""

from __future__ import annotations

import httpx
import pytest

from services.oncall.delivery.channels import classify


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (204, "sent"),
        (301, "permanent"),
        (400, "permanent"),
        (404, "permanent"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_http_outcomes(status: int, outcome: str) -> None:
    result = classify(httpx.Response(status, headers={"Retry-After": "7"}))
    assert result.outcome == outcome and result.status_code == status
    if status in (429, 503):
        assert result.retry_after == 7.0
