"""Detector configuration over REST: create, list, read, update, delete."""
