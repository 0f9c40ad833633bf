"""Prometheus metrics shared by both services (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "nsentry_http_requests_total",
    "HTTP requests answered",
    ["plugin", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "nsentry_http_request_duration_seconds",
    "HTTP request latency",
    ["plugin", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POINTS_INGESTED = Counter(
    "nsentry_points_ingested_total", "Data points stored and scored", ["outcome"]
)
SERIES_REFUSED = Counter(
    "nsentry_series_refused_total",
    "Data points refused because they would start a series past their detector's max_series",
)
ANOMALIES = Counter("nsentry_anomalies_total", "Anomalous points found", ["severity"])
NOTIFICATIONS = Counter(
    "nsentry_notifications_total", "Notification delivery attempts by result", ["channel", "status"]
)
ALERTS = Counter("nsentry_alerts_total", "On-call alerts by event", ["event"])
REMOTE_WRITE_SAMPLES = Counter(
    "nsentry_remote_write_samples_total",
    "Prometheus remote-write samples received, by outcome: routed (fed to at least one "
    "detector), no_detector (no detector's selector matched: dropped), stale (a staleness "
    "marker: skipped), not_finite (NaN or infinite: skipped), out_of_range (a timestamp "
    "outside 1970-2200: skipped), dropped (a request accepted that could not be stored: "
    "logged)",
    ["outcome"],
)
OTLP_DATA_POINTS = Counter(
    "nsentry_otlp_data_points_total",
    "OTLP metric data points received (POST /v1/metrics), by outcome: routed (fed to at "
    "least one detector), no_detector (no detector watches it: dropped), no_value (no "
    "recorded value: skipped), unsupported_type (histogram, exponential histogram, "
    "summary: skipped), not_finite, out_of_range, bad_labels (refused: reported as "
    "rejected in the answer's partial_success)",
    ["outcome"],
)
MODEL_CACHE = Counter(
    "nsentry_model_cache_total",
    "Series models needed by an ingest, by result: hit (live in this process' cache, "
    "ANOMALY_MODEL_CACHE), miss (rebuilt from the checkpoint and journal in the database: "
    "misses that keep growing with a steady load mean the cache is too small)",
    ["result"],
)
