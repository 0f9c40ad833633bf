"""Signed links in notifications (ack, resolve, escalate) and the keys they need."""
