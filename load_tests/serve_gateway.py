"""A gateway process for the benchmark: its own chDB (for write keys), given broker and Redis.

Prints `READY <port> <write key>` once it listens. `--validator jsonschema`
checks every event with the pure-Python validator instead (no typed
decoding, no compiled JSON Schema), to measure the ratio. `--spool` makes
the gateway spool what it publishes to the data dir, as under `up`'s
embedded broker (nothing truncates it here: the benchmark is short).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import jsonschema

from aiohttp import web

from ingest.app import create_app
from ingest import body, validation
from ingest.spool import Spool
from lms_events.clickhouse import open_store
from lms_events.logs import configure_logging
from lms_events.migrations import migrate
from lms_events.runtime import tune_gc_for_serving
from lms_events.settings import Settings
from lms_events.write_keys import create_key


def use_pure_python_validator() -> None:
    """Bodies are parsed as plain JSON, and every compiled check the gateway builds
    becomes a pure-Python jsonschema one."""

    def python_validator(schema, validate_formats=True):  # type: ignore[no-untyped-def]
        cls = jsonschema.validators.validator_for(schema)
        return cls(schema, format_checker=cls.FORMAT_CHECKER)

    validation.jsonschema_rs = SimpleNamespace(validator_for=python_validator)  # type: ignore[attr-defined]
    body.decode_batch = body.decode_one = lambda raw: None  # type: ignore[assignment]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--validator", choices=["compiled", "jsonschema"], default="compiled")
    parser.add_argument("--spool", action="store_true")
    args = parser.parse_args()
    if args.validator == "jsonschema":
        use_pure_python_validator()
    settings = Settings(
        environment="development",
        kafka_bootstrap_servers=args.bootstrap,
        redis_url=args.redis,
        data_dir=args.data_dir,
        rate_limit_events_per_s=10_000_000,
        rate_limit_burst=10_000_000,
        log_level="warning",
    )
    configure_logging(settings)
    store = await open_store(settings)
    await migrate(store)
    _, key = await create_key(store, organization_id="bench-org", environment="development")
    spool = Spool.open(settings.spool_path) if args.spool else None
    runner = web.AppRunner(create_app(settings, store=store, spool=spool), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    tune_gc_for_serving()
    print(f"READY {runner.addresses[0][1]} {key}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
