"""The catalogue: every file of the synthetic corpus, by category of metric.

Sizes are in noise units at the onset (see :mod:`.anomalies`); ``at`` is the
nominal onset as a fraction of the file. Anomalies sit after the first 25 %
of a file (NAB's probationary period is the first 15 %, at most 750 rows)
and far enough apart that their windows do not merge. Recurring incidents
vary in size, and a later one is often smaller than an earlier one.
"""

from __future__ import annotations

from bench.synth import recipes as sh
from bench.synth.anomalies import (
    Anomaly,
    flatline,
    incident,
    missed_peak,
    ramp,
    shift,
    spike,
    variance,
)
from bench.synth.series import Recipe, Spec

M1, M5, H1 = 60, 300, 3600
DAY_MIN = 24 * 60


def _s(
    key: str,
    cadence: int,
    days: float,
    start: str,
    recipe: Recipe,
    params: dict[str, float],
    *anomalies: Anomaly,
    gaps: tuple[tuple[float, float], ...] = (),
    drop: float = 0.0,
    decimals: int = 2,
    hi: float | None = None,
    subset: bool = False,
) -> Spec:
    return Spec(
        key,
        cadence,
        days,
        start,
        recipe,
        params,
        tuple(anomalies),
        gaps,
        drop,
        decimals,
        0.0,
        hi,
        subset,
    )


TRAFFIC = [
    _s("traffic/api_requests_per_s.csv", M1, 7, "2024-03-04", sh.traffic,
       dict(lo=180, hi=1400, weekend=0.65, cron=0.04),
       incident(0.33, -12, 15, hour=10), spike(0.58, 6), incident(0.82, -5, 20),
       gaps=((0.47, 40),), decimals=1),
    _s("traffic/checkout_requests_per_min.csv", M5, 28, "2024-01-08", sh.traffic,
       dict(lo=40, hi=900, peak=19, weekend=1.15, cv=0.05),
       missed_peak(0.55, 19, 600), shift(0.8, -6, "scale"), decimals=0),
    _s("traffic/cdn_egress_gbps.csv", M5, 21, "2024-02-05", sh.traffic,
       dict(lo=2.1, hi=9.5, peak=20, weekend=1.1, cv=0.04, growth=0.08), decimals=3),
    _s("traffic/active_users.csv", H1, 90, "2023-10-02", sh.traffic,
       dict(lo=1200, hi=8200, peak=14, weekend=0.55, cv=0.025, growth=0.06),
       shift(0.5, 8, "scale"), missed_peak(0.75, 14, 720), decimals=0),
    _s("traffic/tweet_mentions.csv", M5, 14, "2024-04-01", sh.counts,
       dict(lo=3, hi=25, peak=17, weekend=0.9, overdispersion=0.35),
       incident(0.3, 12, 90), incident(0.55, 6, 60), incident(0.8, 9, 120),
       decimals=0, subset=True),
    _s("traffic/page_views_per_min.csv", M1, 5, "2024-05-06", sh.traffic,
       dict(lo=300, hi=2600, peak=13, weekend=0.6, cv=0.04, cron=0.06),
       drop=0.002, decimals=0),
    _s("traffic/signups_per_hour.csv", H1, 60, "2024-01-01", sh.counts,
       dict(lo=4, hi=60, peak=16, weekend=0.6, overdispersion=0.1),
       incident(0.45, -8, 300, hour=11), spike(0.8, 10), decimals=0),
    _s("traffic/ingress_mbps.csv", M1, 10, "2024-02-12", sh.traffic,
       dict(lo=40, hi=310, peak=16, weekend=0.7, cv=0.05),
       variance(0.4, 4, 90), flatline(0.7, 180), gaps=((0.55, 25), (0.88, 12))),
    _s("traffic/grpc_requests_per_s.csv", M5, 42, "2023-11-06", sh.traffic,
       dict(lo=90, hi=640, weekend=0.7, cv=0.03, growth=0.03),
       incident(0.3, -10, 45), incident(0.48, -4, 30), incident(0.66, -7, 60),
       incident(0.86, -3.5, 30), gaps=((0.57, 180),), decimals=1),
]  # fmt: skip

ERRORS = [
    _s("errors/http_5xx_per_min.csv", M1, 7, "2024-03-04", sh.counts,
       dict(lo=0.05, hi=2.0, weekend=0.7, overdispersion=0.3),
       incident(0.3, 15, 20), incident(0.46, 6, 10), incident(0.62, 9, 25),
       incident(0.78, 4, 15), incident(0.9, 5, 8), gaps=((0.54, 30),), decimals=0),
    _s("errors/error_rate_pct.csv", M5, 28, "2024-01-15", sh.ratio,
       dict(pct=0.4, volume=30000, overdispersion=0.15),
       incident(0.3, 12, 40), incident(0.52, 5, 30), incident(0.72, 8, 60),
       incident(0.88, 3, 30), decimals=3),
    _s("errors/error_rate_pct_hourly.csv", H1, 60, "2023-12-04", sh.ratio,
       dict(pct=0.8, volume=400000, overdispersion=0.1),
       shift(0.55, 5), spike(0.8, 8), decimals=3),
    _s("errors/timeouts_per_min.csv", M1, 3, "2024-06-03", sh.counts,
       dict(lo=0.02, hi=0.4, peak=14, overdispersion=0.3),
       incident(0.4, 10, 15), incident(0.72, 5, 10), decimals=0, subset=True),
    _s("errors/http_4xx_per_5min.csv", M5, 21, "2024-02-05", sh.counts,
       dict(lo=20, hi=180, weekend=0.75, overdispersion=0.12), decimals=0),
    _s("errors/failed_logins_per_hour.csv", H1, 30, "2024-04-01", sh.counts,
       dict(lo=15, hi=70, peak=11, weekend=0.5, overdispersion=0.15),
       incident(0.5, 12, 180), incident(0.8, 5, 120), decimals=0),
    _s("errors/db_errors_per_5min.csv", M5, 14, "2024-05-06", sh.counts,
       dict(lo=0.02, hi=0.3, overdispersion=0.3),
       incident(0.3, 8, 30), incident(0.5, 14, 45), incident(0.7, 4, 20),
       incident(0.88, 6, 30), decimals=0),
    _s("errors/grpc_error_ratio_pct.csv", M1, 10, "2024-02-19", sh.ratio,
       dict(pct=0.15, volume=60000, overdispersion=0.15),
       variance(0.45, 4, 120), incident(0.75, 7, 25), drop=0.001, decimals=4),
    _s("errors/payment_declines_pct.csv", H1, 120, "2023-09-04", sh.ratio,
       dict(pct=3.2, volume=5000, peak=19, weekend=1.1, overdispersion=0.08), decimals=3),
]  # fmt: skip

LATENCY = [
    _s("latency/api_p99_ms.csv", M1, 7, "2024-03-04", sh.latency,
       dict(base=180, load=0.6, sd=0.12, tail=0.01, deploys=0.3),
       incident(0.3, 10, 15), incident(0.48, 5, 10), incident(0.66, 3.5, 20),
       incident(0.86, 7, 12), gaps=((0.57, 20),), decimals=1),
    _s("latency/api_p50_ms.csv", M5, 28, "2024-01-08", sh.latency,
       dict(base=35, load=0.3, sd=0.06),
       shift(0.45, 6, "scale"), ramp(0.75, 8, DAY_MIN)),
    _s("latency/db_query_p99_ms.csv", M5, 14, "2024-04-08", sh.latency,
       dict(base=12, load=0.5, sd=0.2, tail=0.02),
       variance(0.5, 3, 120), spike(0.8, 12)),
    _s("latency/checkout_p95_ms.csv", H1, 90, "2023-10-02", sh.latency,
       dict(base=420, load=0.35, peak=19, sd=0.05),
       shift(0.4, -6, "scale"), incident(0.7, 9, 240), decimals=1),
    _s("latency/search_p99_ms.csv", M1, 3, "2024-06-03", sh.latency,
       dict(base=95, load=0.5, sd=0.15, tail=0.015), decimals=1, subset=True),
    _s("latency/ttfb_ms.csv", M5, 42, "2023-11-06", sh.latency,
       dict(base=210, load=0.25, peak=20, weekend=0.9, sd=0.07), decimals=1),
    _s("latency/cache_p99_us.csv", M1, 10, "2024-02-12", sh.latency,
       dict(base=850, load=0.3, sd=0.1),
       incident(0.3, 9, 30), flatline(0.6, 240), incident(0.82, 4, 20),
       gaps=((0.45, 60),), decimals=0),
    _s("latency/gateway_p99_ms.csv", H1, 60, "2024-01-01", sh.latency,
       dict(base=260, load=0.4, sd=0.08),
       incident(0.3, 12, 180), incident(0.55, 6, 120), incident(0.8, 4, 240),
       decimals=1, subset=True),
]  # fmt: skip

RESOURCES = [
    _s("resources/cpu_pct.csv", M1, 7, "2024-03-04", sh.utilisation,
       dict(lo=12, hi=68, sd=2.0, batch=25),
       incident(0.4, 8, 40), variance(0.7, 3, 60), decimals=1, hi=100),
    _s("resources/cpu_pct_5min.csv", M5, 28, "2024-01-15", sh.utilisation,
       dict(lo=8, hi=55, sd=1.2, batch=30, batch_hour=3), decimals=1, hi=100),
    _s("resources/memory_mb.csv", M5, 21, "2024-02-05", sh.memory,
       dict(base=1800, warm=900, sd=12), ramp(0.6, 40, 36 * 60), decimals=0),
    _s("resources/disk_used_pct.csv", H1, 90, "2023-10-02", sh.disk,
       dict(start=41, per_day=0.9, rotated=0.6, sd=0.05),
       shift(0.55, 40), ramp(0.8, 60, DAY_MIN, persist=True), hi=100),
    _s("resources/disk_used_pct_5min.csv", M5, 14, "2024-04-08", sh.disk,
       dict(start=62, per_day=0.5, rotated=0.45, sd=0.02), hi=100),
    _s("resources/db_connections.csv", M1, 5, "2024-05-06", sh.utilisation,
       dict(lo=40, hi=160, sd=3, weekend=0.8),
       flatline(0.5, 120), spike(0.8, 10), decimals=0),
    _s("resources/network_out_mbps.csv", M5, 60, "2023-12-04", sh.traffic,
       dict(lo=60, hi=140, peak=14, weekend=0.8, cv=0.04, batch=1.5),
       missed_peak(0.4, 2.5, 90), shift(0.75, 5, "scale"), gaps=((0.6, 120),)),
    _s("resources/gc_pause_ms.csv", M1, 3, "2024-06-03", sh.latency,
       dict(base=8, load=0.8, sd=0.2, tail=0.01),
       incident(0.4, 8, 20), incident(0.75, 4, 15), subset=True),
    _s("resources/load_avg.csv", H1, 30, "2024-04-01", sh.utilisation,
       dict(lo=0.6, hi=3.2, sd=0.15)),
]  # fmt: skip

QUEUES = [
    _s("queues/queue_depth.csv", M1, 7, "2024-03-04", sh.queue,
       dict(base=6, burst=40, drain_s=180),
       incident(0.3, 14, 45), incident(0.55, 5, 30), incident(0.8, 9, 40), decimals=0),
    _s("queues/consumer_lag.csv", M5, 28, "2024-01-08", sh.lag,
       dict(base=300, swing=50, sd=25),
       shift(0.45, 10), flatline(0.75, 300), decimals=0),
    _s("queues/backlog_jobs.csv", H1, 60, "2023-12-04", sh.lag,
       dict(base=50, swing=15, sd=6, batch=400, batch_hour=1),
       missed_peak(0.6, 1.5, 240), spike(0.85, 10), decimals=0, subset=True),
    _s("queues/kafka_lag.csv", M1, 10, "2024-02-19", sh.lag,
       dict(base=800, swing=300, sd=40), gaps=((0.35, 45),), drop=0.002, decimals=0),
    _s("queues/email_queue.csv", M5, 14, "2024-05-06", sh.queue,
       dict(base=1.0, burst=8, every_s=3600, drain_s=600),
       incident(0.35, 10, 60), incident(0.6, 4, 30), incident(0.85, 7, 45),
       decimals=0, subset=True),
    _s("queues/job_duration_s.csv", H1, 120, "2023-09-04", sh.latency,
       dict(base=340, load=0.15, peak=3, sd=0.06, growth=0.02),
       variance(0.45, 3, DAY_MIN), ramp(0.7, 12, 5 * DAY_MIN, persist=True), decimals=1),
    _s("queues/dead_letters.csv", M5, 21, "2024-02-05", sh.counts,
       dict(lo=0.01, hi=0.08, overdispersion=0.3),
       incident(0.35, 10, 30), incident(0.6, 5, 20), incident(0.85, 7, 25), decimals=0),
    _s("queues/inflight_requests.csv", M1, 3, "2024-06-03", sh.counts,
       dict(lo=8, hi=45, overdispersion=0.1), decimals=0),
]  # fmt: skip

EVENTS = [
    _s("events/crash_count.csv", M1, 7, "2024-03-04", sh.counts,
       dict(lo=0.003, hi=0.02, overdispersion=0.3),
       incident(0.3, 15, 20), incident(0.47, 6, 15), incident(0.63, 10, 25),
       incident(0.8, 4, 10), incident(0.92, 8, 15), gaps=((0.55, 30),), decimals=0),
    _s("events/crash_count_hourly.csv", H1, 90, "2023-10-02", sh.counts,
       dict(lo=0.1, hi=0.8, weekend=0.6, overdispersion=0.2),
       incident(0.35, 10, 180), incident(0.6, 5, 120), incident(0.85, 7, 240), decimals=0),
    _s("events/oom_kills.csv", M5, 28, "2024-01-15", sh.counts,
       dict(lo=0.002, hi=0.01, overdispersion=0.2),
       incident(0.4, 12, 60), incident(0.7, 6, 30), decimals=0),
    _s("events/pod_restarts.csv", M5, 14, "2024-04-08", sh.counts,
       dict(lo=0.01, hi=0.03), shift(0.5, 2), decimals=0),
    _s("events/pages_sent.csv", H1, 60, "2024-01-01", sh.counts,
       dict(lo=0.05, hi=0.3, overdispersion=0.3), decimals=0),
    _s("events/app_crash_rate.csv", H1, 120, "2023-09-04", sh.ratio,
       dict(pct=0.12, volume=20000, peak=20, weekend=1.2, overdispersion=0.1),
       shift(0.5, 6), incident(0.8, 8, 360), decimals=4),
    _s("events/sparse_events.csv", M1, 10, "2024-02-19", sh.counts,
       dict(lo=0.005, hi=0.05), gaps=((0.6, 90),), decimals=0),
    _s("events/segfaults.csv", M1, 3, "2024-06-03", sh.counts,
       dict(lo=0.002, hi=0.01), incident(0.4, 12, 10), incident(0.75, 5, 10),
       decimals=0, subset=True),
]  # fmt: skip

CATALOGUE: list[Spec] = TRAFFIC + ERRORS + LATENCY + RESOURCES + QUEUES + EVENTS


def specs(subset: bool = False) -> list[Spec]:
    """The files of the corpus (or of its small subset), in catalogue order."""
    return [s for s in CATALOGUE if s.subset or not subset]
