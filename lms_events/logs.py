"""structlog set-up: JSON lines in production, readable console in development.

Log events name what happened and carry counts and ids of batches; never
user ids, IP addresses or event payloads (PII).
"""

from __future__ import annotations

import logging
import sys

import structlog

from lms_events.log_limits import RepeatLimiter
from lms_events.settings import Settings


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    # Route stdlib logging (aiohttp, aiokafka, faust) through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # These are chatty at INFO about every rebalance step and connection.
    for noisy in ("aiokafka", "faust", "mode", "aiohttp.access", "kafka"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
