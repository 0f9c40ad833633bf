"""No-data alerts: a series that stops reporting records a ``no_data`` anomaly."""
