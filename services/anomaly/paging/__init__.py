"""Paging: anomaly episodes sent to nself-oncall as alerts, through an outbox."""
