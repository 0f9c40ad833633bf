"""Schedules: the store and routes around the pure resolver in `services.oncall.resolver`."""
