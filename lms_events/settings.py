"""One typed settings object, read from the environment once at start.

Every role (`up`, `gateway`, `worker`, `migrate`) receives a `Settings` and
passes it down; nothing below the CLI reads `os.environ`.

An unset server URL means "embedded": `lms-events up` starts that component
itself (Tansu broker, chDB, valkey), see `lms_events.embedded`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

from lms_events.errors import ConfigError

Environment = Literal["production", "development"]

DEFAULT_DATA_DIR = Path(".lms-events")
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_EMBEDDED_KAFKA_PORT = 9092


# Tansu holds every JoinGroup for about half the session timeout, even with one member (measured:
# 5.06 s at 10 s, 2.06 s at 4 s), and `up` rebalances at every topic generation change.
EMBEDDED_SESSION_TIMEOUT_S = 4.0
# Kafka refuses a session under its group.min.session.timeout.ms (6 s by default).
CLUSTER_SESSION_TIMEOUT_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Configuration of every role; each field names its environment variable."""

    environment: Environment = field(default="development", metadata={"env": "LMS_EVENTS_ENV"})
    data_dir: Path = field(default=DEFAULT_DATA_DIR, metadata={"env": "LMS_EVENTS_DATA_DIR"})

    # Kafka: unset = embedded Tansu broker started by `lms-events up`.
    kafka_bootstrap_servers: str | None = field(default=None, metadata={"env": "KAFKA_BOOTSTRAP_SERVERS"})
    embedded_kafka_port: int = field(default=DEFAULT_EMBEDDED_KAFKA_PORT, metadata={"env": "LMS_EVENTS_EMBEDDED_KAFKA_PORT"})
    kafka_topic_partitions: int = field(default=4, metadata={"env": "LMS_EVENTS_KAFKA_PARTITIONS"})
    # Topics lms-events creates; use 3 on a production cluster.
    kafka_replication_factor: int = field(default=1, metadata={"env": "KAFKA_REPLICATION_FACTOR"})
    # The embedded broker holds every message in memory; this bounds it.
    kafka_topic_retention_ms: int = field(default=6 * 3600 * 1000, metadata={"env": "LMS_EVENTS_KAFKA_RETENTION_MS"})
    # The embedded broker only: how often the busy topics move to a new generation, the
    # old one deleted once stored (lms_events/generations.py). Its memory holds ~2 of these.
    topic_rotation_s: float = field(default=60.0, metadata={"env": "LMS_EVENTS_TOPIC_ROTATION_S"})
    # Seconds a publish may take before the gateway answers 503.
    kafka_publish_timeout_s: float = field(default=5.0, metadata={"env": "LMS_EVENTS_KAFKA_PUBLISH_TIMEOUT_S"})
    # Consumer-group rebalance wait; small for the single embedded worker,
    # raise it for a fleet of workers on a real cluster.
    kafka_rebalance_timeout_s: float = field(default=2.0, metadata={"env": "LMS_EVENTS_KAFKA_REBALANCE_TIMEOUT_S"})
    # The stream worker's consumer-group session. Unset: EMBEDDED_SESSION_TIMEOUT_S under `up`'s
    # broker, CLUSTER_SESSION_TIMEOUT_S against a cluster.
    kafka_session_timeout_s: float | None = field(default=None, metadata={"env": "LMS_EVENTS_KAFKA_SESSION_TIMEOUT_S"})

    # ClickHouse: unset = chDB in-process under data_dir/clickhouse.
    clickhouse_url: str | None = field(default=None, metadata={"env": "CLICKHOUSE_URL"})
    clickhouse_database: str = field(default="lms_events", metadata={"env": "CLICKHOUSE_DATABASE"})

    # Redis: unset = `up` starts valkey-server from the wheel, persisting in
    # data_dir/valkey; never a Redis that merely answers on 6379 (it would
    # share dedup and consent keys with whatever else uses it).
    redis_url: str | None = field(default=None, metadata={"env": "REDIS_URL"})
    # 0 = any free port on 127.0.0.1 (the data persists, the port need not).
    embedded_redis_port: int = field(default=0, metadata={"env": "LMS_EVENTS_EMBEDDED_REDIS_PORT"})

    gateway_host: str = field(default="127.0.0.1", metadata={"env": "LMS_EVENTS_GATEWAY_HOST"})
    gateway_port: int = field(default=DEFAULT_GATEWAY_PORT, metadata={"env": "LMS_EVENTS_GATEWAY_PORT"})
    # /metrics of the roles without an HTTP server (`worker`, `reports`), on the gateway host;
    # unset = none (`up`, `gateway` and `api` serve /metrics on their own port).
    metrics_port: int | None = field(default=None, metadata={"env": "LMS_EVENTS_METRICS_PORT"})

    # Sink micro-batch: at most this many Kafka messages (each a sub-batch
    # of events), or whatever arrived within this many seconds.
    sink_batch_messages: int = field(default=500, metadata={"env": "LMS_EVENTS_SINK_BATCH_MESSAGES"})
    sink_batch_within_s: float = field(default=0.5, metadata={"env": "LMS_EVENTS_SINK_BATCH_WITHIN_S"})

    # Intake rules (Event Model seed); see ingest/.
    max_future_s: float = field(default=600.0, metadata={"env": "LMS_EVENTS_MAX_FUTURE_S"})
    late_after_s: float = field(default=86400.0, metadata={"env": "LMS_EVENTS_LATE_AFTER_S"})
    dedup_window_s: int = field(default=86400, metadata={"env": "LMS_EVENTS_DEDUP_WINDOW_S"})
    dedup_local_entries: int = field(default=200_000, metadata={"env": "LMS_EVENTS_DEDUP_LOCAL_ENTRIES"})
    # Sampling rates per sampling class; unset = the seed's rule for this environment.
    sample_performance: float | None = field(default=None, metadata={"env": "LMS_EVENTS_SAMPLE_PERFORMANCE"})
    sample_high_volume: float = field(default=0.01, metadata={"env": "LMS_EVENTS_SAMPLE_HIGH_VOLUME"})
    collect_debug: bool | None = field(default=None, metadata={"env": "LMS_EVENTS_COLLECT_DEBUG"})
    # Token bucket per write key, in events.
    rate_limit_events_per_s: float = field(default=5000.0, metadata={"env": "LMS_EVENTS_RATE_LIMIT_PER_S"})
    rate_limit_burst: int = field(default=20000, metadata={"env": "LMS_EVENTS_RATE_LIMIT_BURST"})
    # HMAC secret that per-organization pseudonymisation keys derive from;
    # unset = generated once into the data dir.
    pii_secret: str | None = field(default=None, metadata={"env": "LMS_EVENTS_PII_SECRET"})
    cors_origins: str = field(default="*", metadata={"env": "LMS_EVENTS_CORS_ORIGINS"})
    # Take the client IP from X-Forwarded-For (behind a trusted load balancer only).
    trust_forwarded_for: bool = field(default=False, metadata={"env": "LMS_EVENTS_TRUST_FORWARDED_FOR"})
    # How often the gateway reloads write keys (revocations apply within this).
    keys_refresh_s: float = field(default=2.0, metadata={"env": "LMS_EVENTS_KEYS_REFRESH_S"})
    # AnalyticsUpdated notifications are coalesced per entity over this window;
    # the API drops cached answers on them, so it bounds how stale a cached answer is.
    analytics_window_s: float = field(default=1.0, metadata={"env": "LMS_EVENTS_ANALYTICS_WINDOW_S"})

    # Read side (analytics/). HS256 secret of the read tokens; unset = generated
    # once into the data dir (fine for `up`; set it for a fleet of api processes).
    jwt_secret: str | None = field(default=None, metadata={"env": "LMS_EVENTS_JWT_SECRET"})
    # Seconds an analytics answer is cached in Redis (dashboard, everything else).
    cache_dashboard_s: float = field(default=60.0, metadata={"env": "LMS_EVENTS_CACHE_DASHBOARD_S"})
    cache_analytics_s: float = field(default=300.0, metadata={"env": "LMS_EVENTS_CACHE_ANALYTICS_S"})
    # Learning progress: an enrollment with activity but none for this many days is `dropped`.
    dropped_after_days: int = field(default=30, metadata={"env": "LMS_EVENTS_DROPPED_AFTER_DAYS"})
    # Analyst SQL (POST /api/v1/query): limits the engine enforces on each query, and how
    # many queries of one organization may run at once (in this process).
    query_max_execution_s: float = field(default=10.0, metadata={"env": "LMS_EVENTS_QUERY_MAX_EXECUTION_S"})
    query_max_result_rows: int = field(default=1_000_000, metadata={"env": "LMS_EVENTS_QUERY_MAX_RESULT_ROWS"})
    query_max_memory_bytes: int = field(default=2 * 1024**3, metadata={"env": "LMS_EVENTS_QUERY_MAX_MEMORY_BYTES"})
    query_concurrency: int = field(default=2, metadata={"env": "LMS_EVENTS_QUERY_CONCURRENCY"})

    # Report worker (reports/). Jobs generated at once by one worker process; with
    # embedded chDB every query shares one engine thread, so more mostly queues.
    reports_concurrency: int = field(default=4, metadata={"env": "LMS_EVENTS_REPORTS_CONCURRENCY"})
    # A job whose worker has not renewed it for this long is taken over (XAUTOCLAIM).
    reports_visibility_s: float = field(default=60.0, metadata={"env": "LMS_EVENTS_REPORTS_VISIBILITY_S"})
    # First automatic retry after this many seconds, doubling up to 3 retries.
    reports_retry_base_s: float = field(default=5.0, metadata={"env": "LMS_EVENTS_REPORTS_RETRY_BASE_S"})
    # A completed report's file is downloadable this long (expiresAt), then removed.
    reports_retention_days: int = field(default=7, metadata={"env": "LMS_EVENTS_REPORTS_RETENTION_DAYS"})
    # Report files in this S3-compatible bucket (credentials: the usual AWS_* chain); unset = the data dir.
    reports_s3_bucket: str | None = field(default=None, metadata={"env": "LMS_EVENTS_REPORTS_S3_BUCKET"})
    # Another S3-compatible service (MinIO, Ceph, a test server); unset = AWS.
    reports_s3_endpoint_url: str | None = field(default=None, metadata={"env": "LMS_EVENTS_REPORTS_S3_ENDPOINT_URL"})
    # Whether `lms-events up` runs the report worker in-process (`lms-events reports` runs it alone).
    reports_worker: bool = field(default=True, metadata={"env": "LMS_EVENTS_REPORTS_WORKER"})

    log_format: Literal["json", "console"] | None = field(default=None, metadata={"env": "LMS_EVENTS_LOG_FORMAT"})
    log_level: str = field(default="info", metadata={"env": "LMS_EVENTS_LOG_LEVEL"})

    def __post_init__(self) -> None:
        if self.environment not in ("production", "development"):
            raise ConfigError("LMS_EVENTS_ENV", f"must be 'production' or 'development', got {self.environment!r}")
        if self.log_format not in (None, "json", "console"):
            raise ConfigError("LMS_EVENTS_LOG_FORMAT", f"must be 'json' or 'console', got {self.log_format!r}")
        for name in ("gateway_port", "embedded_kafka_port", "embedded_redis_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(_env_name(name), f"must be a TCP port (0-65535), got {port}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError("LMS_EVENTS_METRICS_PORT", f"must be a TCP port (0-65535), got {self.metrics_port}")
        if self.topic_rotation_s <= 0:
            raise ConfigError("LMS_EVENTS_TOPIC_ROTATION_S", "must be positive")
        if self.kafka_topic_partitions < 1:
            raise ConfigError("LMS_EVENTS_KAFKA_PARTITIONS", "must be at least 1")
        for name in ("sample_performance", "sample_high_volume"):
            rate = getattr(self, name)
            if rate is not None and not 0.0 <= rate <= 1.0:
                raise ConfigError(_env_name(name), f"a sampling rate is between 0 and 1, got {rate}")
        if self.rate_limit_events_per_s <= 0 or self.rate_limit_burst < 1:
            raise ConfigError("LMS_EVENTS_RATE_LIMIT_PER_S", "rate limit and burst must be positive")
        if self.sink_batch_messages < 1 or self.sink_batch_within_s <= 0:
            raise ConfigError("LMS_EVENTS_SINK_BATCH_MESSAGES", "sink batch size and time must be positive")
        if self.cache_dashboard_s < 0 or self.cache_analytics_s < 0:
            raise ConfigError("LMS_EVENTS_CACHE_ANALYTICS_S", "cache lifetimes are zero (off) or positive")
        if self.dropped_after_days < 1:
            raise ConfigError("LMS_EVENTS_DROPPED_AFTER_DAYS", "must be at least 1")
        if self.analytics_window_s <= 0:
            raise ConfigError("LMS_EVENTS_ANALYTICS_WINDOW_S", "must be positive")
        for name in ("query_max_execution_s", "query_max_result_rows", "query_max_memory_bytes", "query_concurrency"):
            if getattr(self, name) <= 0:
                raise ConfigError(_env_name(name), "must be positive")
        if self.reports_concurrency < 1:
            raise ConfigError("LMS_EVENTS_REPORTS_CONCURRENCY", "must be at least 1")
        if self.reports_visibility_s <= 0 or self.reports_retry_base_s < 0:
            raise ConfigError("LMS_EVENTS_REPORTS_VISIBILITY_S", "visibility timeout positive, retry base not negative")
        if self.reports_retention_days < 1:
            raise ConfigError("LMS_EVENTS_REPORTS_RETENTION_DAYS", "must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.metadata["env"], raw, str(f.type))
        return cls(**values)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_url is None

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def faust_data_dir(self) -> Path:
        return self.data_dir / "faust"

    @property
    def spool_path(self) -> Path:
        """The gateway's spool under the embedded broker (ingest/spool.py)."""
        return self.data_dir / "spool"

    @property
    def performance_sample_rate(self) -> float:
        """Seed: system performance events 10 % in production, 100 % in development."""
        if self.sample_performance is not None:
            return self.sample_performance
        return 0.1 if self.environment == "production" else 1.0

    @property
    def debug_events_collected(self) -> bool:
        """Seed: debug events only in development."""
        return self.collect_debug if self.collect_debug is not None else self.environment == "development"

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        return self.environment == "production"


def env_names() -> dict[str, str]:
    """Setting name -> environment variable, for docs and the compose-file test."""
    return {f.name: f.metadata["env"] for f in fields(Settings)}


def _env_name(field_name: str) -> str:
    return env_names()[field_name]


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _coerce(env: str, raw: str, annotation: str) -> object:
    """Parse `raw` by the field's annotation (`int`, `float | None`, `Path`, ...)."""
    kind = annotation.split("|")[0].strip()
    try:
        if kind == "bool":
            if raw.lower() not in _TRUE + _FALSE:
                raise ValueError("expected true or false")
            return raw.lower() in _TRUE
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(env, f"cannot parse {raw!r}: {exc}") from None
    return raw
