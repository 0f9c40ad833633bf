"""Request and response models of the detector routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_serializer,
    model_validator,
)

from services.anomaly.detectors import ALGORITHMS
from services.anomaly.fields import Slug, Status, Strict
from services.anomaly.nodata.core import MAX_NO_DATA_SECONDS, MIN_NO_DATA_SECONDS
from services.anomaly.otlp.source import parse_source
from services.anomaly.prometheus_pull.source import PROMETHEUS, check_prometheus
from services.anomaly.remote_write.selector import SelectorError, parse_selector
from services.anomaly.series import MAX_SERIES_DEFAULT, MAX_SERIES_LIMIT, GroupBy
from services.anomaly.thresholds import Thresholds
from services.common.fields import omittable

MAX_SERIES = (
    "how many series the detector may watch; a point that would start one more is refused "
    "(its own error in the answer, counted in nsentry_series_refused_total), the others "
    "are stored"
)

NO_DATA_SECONDS = (
    "no-data alerts: a series that has reported and then sends no point for this many "
    "seconds records one anomaly of kind `no_data` (paged like an episode's first anomaly; "
    "resolved when a newer point arrives). 60 s to 30 days; null (the default): off. "
    "Set it well above the series' reporting interval"
)

THRESHOLDS = (
    "Threshold policy and paging, every key optional (defaults shown): "
    '{"score": 0.99, "direction": "both|up|down", "consecutive": 1, '
    '"cooldown_seconds": 1800, "upper": null, "lower": null, "critical": 0.999, '
    '"page_max_age_seconds": 3600, "auto_resolve": true}. '
    "A point is anomalous when its score reaches `score` in the allowed direction for "
    "`consecutive` points, or crosses the static bound `upper`/`lower` (always critical). "
    "`critical`: the score from which an anomaly is critical; never while the detector is "
    "still learning (status `learning`), unless a bound is crossed. "
    "`cooldown_seconds` (default 30 minutes): anomalies this close to the previous one, or "
    "directly following it, form one episode, which pages once (a flapping metric is one "
    "incident); the episode ends at the first point more than this after its last anomaly, "
    "or when no point comes for that long (twice the series' interval if longer). "
    "`page_max_age_seconds` (default one hour, null: no limit): a point older than this "
    "when it is scored pages nobody (a backfill), though it is stored and listed; an "
    "episode pages at its first anomaly that is neither too old nor scored while learning "
    "(a bound excepted). `auto_resolve` (default true): the on-call alert of an episode is "
    "resolved when the episode ends; false leaves it for a person to resolve."
)


# any other name is a 422 from the service, which lists these
Algorithm = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    Field(json_schema_extra={"enum": sorted(ALGORITHMS)}),
]


def _thresholds_schema(schema: dict[str, Any]) -> None:
    """The threshold policy's own schema (``thresholds.Thresholds``: every key optional,
    no other key) in place of a bare object; its cross-field rules (``lower`` not above
    ``upper``, ``critical`` not below ``score``) are the service's 422."""
    policy = Thresholds.model_json_schema()
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "object":
            branch.update(
                properties=policy["properties"], additionalProperties=False, title="Thresholds"
            )


def _params_schema(schema: dict[str, Any]) -> None:
    """Each algorithm's parameters (its ``Params`` model: every key optional, no other
    key) in place of a bare object; which set applies depends on `algorithm`, and a
    set's cross-field rules are the service's 422 naming the parameter."""
    for key in ("type", "additionalProperties", "anyOf"):
        schema.pop(key, None)
    schema["anyOf"] = [
        {**ALGORITHMS[name].Params.model_json_schema(), "title": f"{name} parameters"}
        for name in sorted(ALGORITHMS)
    ]


class MetricSource(BaseModel):
    """Where the series comes from: pushed to /ingest, or a named source."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"type": "push"},
                {"type": "remote_write", "match": 'http_requests_total{job="api"}'},
                {
                    "type": "prometheus",
                    "url": "http://prometheus:9090",
                    "query": 'rate(http_requests_total{job="api"}[5m])',
                    "step_seconds": 60,
                    "lookback_seconds": 86400,
                },
                {
                    "type": "otlp",
                    "metric": "http.server.active_requests",
                    "match": {"service_name": "checkout"},
                },
            ]
        },
    )

    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="push",
        description=(
            "`push` (the default): points come from POST /api/v1/ingest (or Hasura). "
            "`remote_write`: samples come from Prometheus remote write (POST /api/v1/write), "
            "those whose series `match` selects. "
            "`otlp`: gauge and sum data points of the OTLP metric `metric` come from OTLP/HTTP "
            "(POST /v1/metrics), those whose labels `match` filters"
        ),
    )
    match: str | dict[str, Any] | None = Field(
        default=None,
        description=(
            "`remote_write`: a Prometheus series selector, required: an optional metric name "
            "and label matchers (`=`, `!=`, `=~`, `!~`, on labels and `__name__`), e.g. "
            '`http_requests_total{job="api", code=~"5.."}`; a selector that does not parse '
            "is a 422. "
            "`otlp` (optional): label filters, label name -> exact value, all must hold "
            '(`{"service_name": "checkout", "http_route": "/pay"}`); the names are label names, '
            "OTLP attribute names with every character but letters, digits and _ replaced by _"
        ),
    )
    metric: str | None = Field(
        default=None,
        description=(
            "`otlp`: the OTLP metric name, exactly as sent (`http.server.active_requests`), "
            "required"
        ),
    )

    # `prometheus` (Prometheus pull, services/anomaly/prometheus_pull/)
    url: str | None = Field(
        default=None,
        description=(
            "`prometheus`: the Prometheus server's base URL (http or https, no query), "
            "required; its host must be a public address or be listed in "
            "ANOMALY_ALLOWED_SOURCES (loopback too in local mode), else a 422"
        ),
    )
    query: str | None = Field(
        default=None,
        description="`prometheus`: the PromQL query polled with /api/v1/query_range, required",
    )
    step_seconds: StrictInt | None = Field(
        default=None,
        description="`prometheus`: the query step and poll interval, 1 to 86400 (default 60)",
    )
    lookback_seconds: StrictInt | None = Field(
        default=None,
        description=(
            "`prometheus`: how far back the first poll backfills (learned, never paged) "
            "and the furthest back a poll catches up after an outage, 0 to 2678400 "
            "(default 86400)"
        ),
    )
    headers: dict[str, str] | None = Field(
        default=None,
        description=(
            "`prometheus`: extra request headers (at most 20, e.g. X-Scope-OrgID); "
            'secrets: stored apart, answered as "<redacted>" (sending "<redacted>" back '
            "keeps the stored value)"
        ),
    )
    bearer: str | None = Field(
        default=None,
        description=(
            "`prometheus`: a bearer token sent as Authorization; a secret: stored apart, "
            'answered as "<redacted>" (sending "<redacted>" back keeps the stored value)'
        ),
    )

    @model_validator(mode="after")
    def _check_source(self) -> MetricSource:
        if self.type == "remote_write":
            if not isinstance(self.match, str):
                raise ValueError(
                    "metric_source.match: a remote_write source needs a series selector, "
                    'e.g. http_requests_total{job="api"}'
                )
            try:
                parse_selector(self.match)
            except SelectorError as exc:
                raise ValueError(f"metric_source.match: {exc}") from None
        if self.type == "otlp":
            parse_source(self.metric, self.match)  # ValueError naming the field
        if self.type == PROMETHEUS:
            fields = {name: getattr(self, name) for name in _PULL_FIELDS}
            for name, value in check_prometheus(fields).items():
                setattr(self, name, value)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("match", "metric"):  # a push source stays {"type": "push"}
            if data.get(key) is None:
                data.pop(key, None)
        for key in _PULL_FIELDS:  # only a prometheus source has them
            if data.get(key) is None or (key == "headers" and not data[key]):
                data.pop(key, None)
        return data


_PULL_FIELDS = ("url", "query", "step_seconds", "lookback_seconds", "headers", "bearer")


class DetectorCreate(Strict):
    """A new detector; only `name` is required (id is generated from it when absent)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "api-latency",
                    "name": "API p95 latency",
                    "metric_source": {"type": "push"},
                    "algorithm": "auto",
                    "params": {},
                    "thresholds": {"score": 0.99, "direction": "up", "cooldown_seconds": 600},
                    "escalation_policy_id": "backend-primary",
                }
            ]
        },
    )

    id: Slug | None = Field(default=None, description="slug; generated from the name if absent")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    metric_source: MetricSource = Field(default_factory=MetricSource)
    algorithm: Algorithm = "auto"
    params: dict[str, Any] = Field(
        default_factory=dict, description="per algorithm", json_schema_extra=_params_schema
    )
    thresholds: dict[str, Any] = Field(
        default_factory=dict, description=THRESHOLDS, json_schema_extra=_thresholds_schema
    )
    escalation_policy_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = (
        Field(
            default=None,
            description="nself-oncall escalation policy: each anomaly episode opens one alert",
        )
    )
    enabled: StrictBool = True
    group_by: GroupBy | None = None
    max_series: int = Field(
        default=MAX_SERIES_DEFAULT, ge=1, le=MAX_SERIES_LIMIT, description=MAX_SERIES
    )
    no_data_seconds: StrictInt | None = Field(
        default=None, ge=MIN_NO_DATA_SECONDS, le=MAX_NO_DATA_SECONDS, description=NO_DATA_SECONDS
    )


class DetectorPatch(Strict):
    """Fields to change; changing `algorithm` or `params` restarts learning."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"thresholds": {"score": 0.995}, "enabled": True}]},
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = omittable()
    description: Annotated[str, StringConstraints(max_length=2000)] | None = omittable()
    metric_source: MetricSource | None = omittable()
    algorithm: Algorithm | None = omittable()
    params: dict[str, Any] | None = omittable(json_schema_extra=_params_schema)
    thresholds: dict[str, Any] | None = omittable(
        description=THRESHOLDS, json_schema_extra=_thresholds_schema
    )
    escalation_policy_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = (
        None
    )
    enabled: StrictBool | None = omittable()
    group_by: GroupBy | None = Field(
        default=None,
        description=(
            "a new group_by: series it can no longer make (a label it drops) are deleted "
            "with their models; the others keep what they learned"
        ),
    )
    max_series: int | None = omittable(ge=1, le=MAX_SERIES_LIMIT, description=MAX_SERIES)
    no_data_seconds: StrictInt | None = Field(
        default=None,
        ge=MIN_NO_DATA_SECONDS,
        le=MAX_NO_DATA_SECONDS,
        description=NO_DATA_SECONDS + "; null turns it off (an open silence ends)",
    )


class LastPoint(BaseModel):
    timestamp: datetime
    value: float | None
    score: float | None


class DetectorCounts(BaseModel):
    points: int = Field(description="points accepted since creation")
    anomalies: int
    late: int
    duplicates: int


class SourceStatus(BaseModel):
    """How a pulled source (`metric_source.type` `prometheus`) is doing."""

    last_success_at: datetime | None = Field(description="the last poll that stored its points")
    last_error: str | None = Field(
        description="the last failed poll's error (kept after a success: compare the times)"
    )
    last_error_at: datetime | None
    lag_seconds: float | None = Field(
        description="how far the newest stored instant is behind now (null: not polled yet)"
    )
    position: datetime | None = Field(description="the newest stored evaluation instant")
    polls: int = Field(description="polls made (one query_range each), failed ones included")
    errors: int = Field(description="failed polls")
    skipped: int = Field(description="samples skipped: NaN or infinite values")


class DetectorOut(BaseModel):
    """A detector's configuration, status and counters (its streaming state stays inside)."""

    id: str
    name: str
    description: str
    metric_source: dict[str, Any]
    algorithm: str
    params: dict[str, Any]
    thresholds: dict[str, Any] = Field(description="the policy, normalised (every default filled)")
    escalation_policy_id: str | None = Field(
        description="the nself-oncall escalation policy that anomaly episodes page (null: none)"
    )
    enabled: bool
    group_by: list[str] | None = Field(
        description="the labels that make a series (null: every label; []: one series)"
    )
    max_series: int = Field(description="how many series it may watch")
    source_status: SourceStatus | None = Field(
        description="a pulled source's health (`prometheus`); null for every other source"
    )
    series_count: int = Field(description="how many series it watches")
    no_data_seconds: int | None = Field(
        default=None, description="no-data alerts after this many silent seconds (null: off)"
    )
    status: Status = Field(
        description=(
            "`learning` while the detector says it is still learning (most algorithms: "
            "until `warmup` points are learned; `auto`: its first seasonal cycle, in time): "
            "its anomalies are never critical and page nobody, a static bound excepted; "
            "then `active`; `disabled` when off. With several series: `active` once one "
            "of them is (each series' own status is in /detectors/{id}/series)"
        )
    )
    n_seen: int = Field(description="points the models have learned (all series)")
    warmup: int = Field(description="points learned before scores can be non-zero")
    counts: DetectorCounts
    last_point: LastPoint | None
    last_anomaly_at: datetime | None
    created_at: datetime
    updated_at: datetime
