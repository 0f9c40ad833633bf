"""nself-anomaly: statistical anomaly detection scored at ingest."""
