"""Notification delivery: the outbox, channels (webhook, email, Slack) and their safeguards."""
