"""The `lms-events` command.

    lms-events up        everything in one process, embedding what is not configured
    lms-events gateway   the HTTP gateway alone (needs KAFKA_BOOTSTRAP_SERVERS)
    lms-events worker    the stream app alone (needs KAFKA_BOOTSTRAP_SERVERS)
    lms-events migrate   apply pending ClickHouse migrations

Configuration comes from the environment (see README, `lms_events.settings`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from lms_events import runtime
from lms_events.errors import LmsEventsError
from lms_events.logs import configure_logging
from lms_events.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lms-events", description="Learning-event ingestion and stream processing.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run gateway, stream worker and embedded components in one process")
    commands.add_parser("gateway", help="run the HTTP gateway against configured servers")
    commands.add_parser("worker", help="run the stream worker against configured servers")
    commands.add_parser("migrate", help="apply pending ClickHouse migrations")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings)
        if args.command == "up":
            asyncio.run(runtime.run_up(settings))
        elif args.command == "gateway":
            runtime.run_gateway(settings)
        elif args.command == "worker":
            asyncio.run(runtime.run_worker(settings))
        elif args.command == "migrate":
            applied = asyncio.run(runtime.run_migrate(settings))
            print(f"applied migrations: {applied or 'none pending'}")
    except LmsEventsError as exc:
        print(f"lms-events: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
