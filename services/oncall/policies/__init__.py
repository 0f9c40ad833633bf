"""Escalation policies: ordered steps of targets (people or schedules) with delays."""
