"""Streaming anomaly detectors, one algorithm per module."""
