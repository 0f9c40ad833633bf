"""nself-oncall: rotations, overrides, escalation, alerts and delivery."""
