"""Overrides: a person on call for a schedule over a span, above every layer."""
