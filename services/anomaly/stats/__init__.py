"""Stats: points, anomalies and feedback per account and per detector."""
