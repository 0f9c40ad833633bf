"""Alerts: triggered against a policy, deduplicated while open, acknowledged, resolved."""
