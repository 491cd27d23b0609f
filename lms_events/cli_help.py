"""The environment variables each `lms-events` command reads, for its `--help`.

Every name is a field of lms_events.settings.Settings (tests/test_cli_newcomer.py
checks it), and the default shown is that field's.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

from lms_events.settings import Settings

EVERY_COMMAND = ("LMS_EVENTS_DATA_DIR", "LMS_EVENTS_ENV", "LMS_EVENTS_LOG_FORMAT", "LMS_EVENTS_LOG_LEVEL")
SERVERS = ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "REDIS_URL")
LISTEN = ("LMS_EVENTS_GATEWAY_HOST", "LMS_EVENTS_GATEWAY_PORT")

ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "up": (
        *SERVERS, *LISTEN, "LMS_EVENTS_EMBEDDED_KAFKA_PORT", "LMS_EVENTS_EMBEDDED_REDIS_PORT", "LMS_EVENTS_JWT_SECRET",
        "LMS_EVENTS_PII_SECRET", "LMS_EVENTS_REPORTS_WORKER", "LMS_EVENTS_KAFKA_PUBLISH_TIMEOUT_S",
    ),
    "gateway": (
        *SERVERS, *LISTEN, "LMS_EVENTS_PII_SECRET", "LMS_EVENTS_JWT_SECRET", "LMS_EVENTS_RATE_LIMIT_PER_S",
        "LMS_EVENTS_RATE_LIMIT_BURST", "LMS_EVENTS_CORS_ORIGINS", "LMS_EVENTS_TRUST_FORWARDED_FOR",
        "LMS_EVENTS_KAFKA_PUBLISH_TIMEOUT_S",
    ),
    "worker": (
        "KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "LMS_EVENTS_SINK_BATCH_MESSAGES", "LMS_EVENTS_SINK_BATCH_WITHIN_S",
        "LMS_EVENTS_METRICS_PORT", "LMS_EVENTS_GATEWAY_HOST",
    ),
    "api": (
        "CLICKHOUSE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", *LISTEN, "LMS_EVENTS_JWT_SECRET",
        "LMS_EVENTS_CACHE_DASHBOARD_S", "LMS_EVENTS_CACHE_ANALYTICS_S",
    ),
    "reports": (
        "REDIS_URL", "CLICKHOUSE_URL", "KAFKA_BOOTSTRAP_SERVERS", "LMS_EVENTS_REPORTS_CONCURRENCY",
        "LMS_EVENTS_REPORTS_S3_BUCKET", "LMS_EVENTS_METRICS_PORT", "LMS_EVENTS_GATEWAY_HOST",
    ),
    "migrate": ("CLICKHOUSE_URL", "CLICKHOUSE_DATABASE"),
    "token": ("LMS_EVENTS_JWT_SECRET",),
    "keys": ("CLICKHOUSE_URL", "CLICKHOUSE_DATABASE", "LMS_EVENTS_KEYS_REFRESH_S"),
    "retention": ("CLICKHOUSE_URL", "CLICKHOUSE_DATABASE", "LMS_EVENTS_KEYS_REFRESH_S"),
    "analysts": ("CLICKHOUSE_URL", "LMS_EVENTS_QUERY_MAX_EXECUTION_S", "LMS_EVENTS_QUERY_MAX_RESULT_ROWS"),
    "reference": ("KAFKA_BOOTSTRAP_SERVERS",),
    "backfill": ("CLICKHOUSE_URL", "CLICKHOUSE_DATABASE"),
    "sql": ("LMS_EVENTS_JWT_SECRET",),
}


# What leaving these unset means.
UNSET = {
    "KAFKA_BOOTSTRAP_SERVERS": "unset = `up` embeds a Tansu broker",
    "CLICKHOUSE_URL": "unset = chDB in the data dir",
    "REDIS_URL": "unset = `up` starts its own valkey in the data dir",
    "LMS_EVENTS_JWT_SECRET": "unset = generated into the data dir",
    "LMS_EVENTS_PII_SECRET": "unset = generated into the data dir",
    "LMS_EVENTS_METRICS_PORT": "unset = no /metrics for this role",
    "LMS_EVENTS_LOG_FORMAT": "unset = json in production, console in development",
    "LMS_EVENTS_REPORTS_S3_BUCKET": "unset = files in the data dir",
}


def _defaults() -> dict[str, str]:
    shown: dict[str, str] = {}
    for f in fields(Settings):
        default = f.default if f.default is not MISSING else None
        name = f.metadata["env"]
        shown[name] = UNSET.get(name, "unset") if default is None else f"default: {default}"
    return shown


def environment_help(command: str | None) -> str:
    """The epilog of `lms-events [command] --help`: the variables it reads and their defaults."""
    names = (*ENVIRONMENT.get(command, ()), *EVERY_COMMAND) if command else (*SERVERS, *EVERY_COMMAND)
    defaults = _defaults()
    width = max(map(len, names))
    lines = [f"  {name:<{width}}  {defaults[name]}" for name in dict.fromkeys(names)]
    what = "environment variables it reads" if command else "environment variables of every command"
    return "\n".join([f"{what} (every one: README, Configuration):", *lines])


def add_environment_help(parser: argparse.ArgumentParser, command: str | None = None) -> None:
    """Set the epilog of `parser` and of its sub-commands, each command's own variables."""
    parser.epilog = environment_help(command)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                add_environment_help(sub, command or name)
