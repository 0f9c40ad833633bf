"""Anomalies: the list, one anomaly with its neighbours, and feedback."""
