"""Tests of the pure on-call resolver (services.oncall.resolver)."""
