"""Escalation: a pure engine (plain values in, actions out) and the runner that does its I/O."""
