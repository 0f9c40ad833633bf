"""Ingest: points in, scored, stored, anomalies and pages out (see pipeline.py)."""
