"""The `lms-events` command.

    lms-events up        everything in one process, embedding what is not configured
    lms-events gateway   the HTTP gateway alone (needs KAFKA_BOOTSTRAP_SERVERS)
    lms-events worker    the stream app alone (needs KAFKA_BOOTSTRAP_SERVERS)
    lms-events api       the analytics API alone (needs CLICKHOUSE_URL and REDIS_URL)
    lms-events reports   the report worker alone (needs REDIS_URL; owns chDB without CLICKHOUSE_URL)
    lms-events migrate   apply pending ClickHouse migrations
    lms-events token --org ORG --role ROLE --sub USER [--departments D1,D2]
                         mint a read token (development, examples)
    lms-events keys create|list|revoke   manage write keys (works while `up` runs)
    lms-events retention set|show --org ORG [--standard DAYS] [--sensitive DAYS] [--pii DAYS] [--system DAYS]
                         an organization's retention, only shorter than the seed's caps
    lms-events analysts create --org ORG [--name N] | list [--org ORG] | revoke USER
                         read-only ClickHouse users of one organization (a ClickHouse server only)
    lms-events reference load FILE.jsonl
                         send existing users, courses, enrollments (domain events) to Kafka
    lms-events backfill [--since DATE] [--org ORG] [--all]
                         re-enrich stored events whose reference data arrived later
    lms-events sql "SELECT ..." [--org ORG] [--format csv|json]
                         query stored data through the running `up` (analyst SQL, read-only)

Configuration comes from the environment (see README, `lms_events.settings`);
`lms-events COMMAND --help` lists a command's options and the variables it reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from analytics.analyst import server_users
from analytics.analyst.guard import Limits
from lms_events import runtime, sql_command, up
from lms_events.cli_help import add_environment_help
from lms_events.clickhouse import open_store
from lms_events.control import control_plane
from lms_events.errors import ConfigError, LmsEventsError
from lms_events.logs import configure_logging
from lms_events.settings import Settings
from lms_events.tokens import Role
from streams.backfill import BackfillScope

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lms-events", description="Learning-event ingestion and stream processing.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run gateway, stream worker and embedded components in one process")
    commands.add_parser("gateway", help="run the HTTP gateway against configured servers")
    commands.add_parser("worker", help="run the stream worker against configured servers")
    commands.add_parser("api", help="run the analytics API against a ClickHouse server")
    commands.add_parser("reports", help="run the report worker (jobs from the Redis queue)")
    commands.add_parser("migrate", help="apply pending ClickHouse migrations")
    token = commands.add_parser("token", help="mint a read token (JWT) signed with LMS_EVENTS_JWT_SECRET")
    token.add_argument("--role", required=True, choices=[str(role) for role in Role])
    token.add_argument("--sub", required=True, help="the user id the token speaks for")
    token.add_argument("--org", default=None, help="organization id (a system-admin token may have none)")
    token.add_argument("--departments", default="", help="comma-separated department ids (teacher-admin)")

    keys = commands.add_parser("keys", help="manage write keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a write key; the key is printed on the last line")
    create.add_argument("--org", required=True, help="organization id the key writes for")
    create.add_argument("--env", default=None, help="production or development (default: LMS_EVENTS_ENV)")
    create.add_argument("--name", default="", help="a label, e.g. the client app")
    listing = keys.add_parser("list", help="list write keys (never the keys themselves)")
    listing.add_argument("--org", default=None, help="only this organization's keys")
    revoke = keys.add_parser("revoke", help="revoke a write key by its id")
    revoke.add_argument("key_id")
    kept = commands.add_parser("retention", help="how long an organization keeps its events (only shorter than the seed)")
    kept_commands = kept.add_subparsers(dest="retention_command", required=True)
    set_kept = kept_commands.add_parser("set", help="shorten retention; applies to new events and to rows already stored")
    set_kept.add_argument("--org", required=True)
    for level in ("standard", "sensitive", "pii"):
        set_kept.add_argument(f"--{level}", type=int, metavar="DAYS", help=f"days {level} events are kept")
    set_kept.add_argument("--system", type=int, metavar="DAYS", help="days system performance events are kept")
    show_kept = kept_commands.add_parser("show", help="an organization's retention policy")
    show_kept.add_argument("--org", required=True)
    analysts = commands.add_parser("analysts", help="ClickHouse users for analysts (a ClickHouse server only)")
    analyst_commands = analysts.add_subparsers(dest="analysts_command", required=True)
    analyst_create = analyst_commands.add_parser("create", help="create a read-only user of one organization; prints its password")
    analyst_create.add_argument("--org", required=True)
    analyst_create.add_argument("--name", default="", help="who it is for")
    analyst_list = analyst_commands.add_parser("list", help="list analyst users (never their passwords)")
    analyst_list.add_argument("--org")
    analyst_revoke = analyst_commands.add_parser("revoke", help="drop an analyst user, its policies, profile and quota")
    analyst_revoke.add_argument("user")
    reference = commands.add_parser("reference", help="reference data (users, courses, enrollments)")
    reference_commands = reference.add_subparsers(dest="reference_command", required=True)
    load = reference_commands.add_parser("load", help="send a JSON-lines file of domain events to their topics")
    load.add_argument("file", type=Path)
    backfill = commands.add_parser("backfill", help="re-enrich stored events with missing reference data")
    backfill.add_argument("--since", type=date.fromisoformat, help="only events from this day on (YYYY-MM-DD)")
    backfill.add_argument("--org", help="only this organization")
    backfill.add_argument("--all", action="store_true", help="re-enrich every event in scope (values gone stale)")
    sql = commands.add_parser("sql", help="query stored data through the running `lms-events up` (read-only analyst SQL)")
    sql.add_argument("query", help='one SELECT over the analyst tables, e.g. "SELECT count() FROM events"')
    sql.add_argument("--org", default=None, help="only this organization (default: every one)")
    sql.add_argument("--format", default="csv", choices=sql_command.FORMATS, help="csv with a header (default) or ClickHouse JSON")
    sql.add_argument("--url", default=None, help="a gateway or api sharing LMS_EVENTS_JWT_SECRET (default: the running `up`)")
    add_environment_help(parser)
    return parser


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    async with control_plane(settings, may_create=args.keys_command == "create") as control:
        if args.keys_command == "create":
            created = await control.create_key(args.org, args.env or settings.environment, args.name)
            print(f"created write key {created['key_id']} for {created['organization_id']} ({created['environment']})")
            print(created["key"])
        elif args.keys_command == "list":
            for key in await control.list_keys(args.org):
                state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
                print(f"{key['key_id']}  {key['organization_id']}  {key['environment']}  {state}  {key['name']}")
        else:
            revoked = await control.revoke_key(args.key_id)
            print(f"revoked write key {revoked['key_id']} of {revoked['organization_id']}")


async def _retention(settings: Settings, args: argparse.Namespace) -> None:
    async with control_plane(settings) as control:
        if args.retention_command == "set":
            levels = {level: getattr(args, level) for level in ("standard", "sensitive", "pii") if getattr(args, level)}
            categories = {"system_performance": args.system} if args.system else {}
            policy = await control.set_retention(args.org, levels, categories)
        else:
            policy = await control.show_retention(args.org)
        print(json.dumps(policy))
async def _analysts(settings: Settings, args: argparse.Namespace) -> None:
    if not settings.clickhouse_url:  # before open_store, which would start an embedded chDB
        raise ConfigError("CLICKHOUSE_URL", server_users.NEEDS_SERVER)
    store = await open_store(settings)
    try:
        if args.analysts_command == "create":
            limits = Limits(settings.query_max_execution_s, settings.query_max_result_rows, settings.query_max_memory_bytes)
            created = await server_users.create(store, args.org, args.name, limits, settings.query_concurrency)
            print(f"created ClickHouse user {created.user_name} for {created.organization_id}; its password:")
            print(created.password)
        elif args.analysts_command == "list":
            for user in await server_users.listed(store, args.org):
                state = f"revoked {user['revoked_at']}" if user["revoked_at"] else "active"
                print(f"{user['user_name']}  {user['organization_id']}  {state}  {user['name']}")
        else:
            revoked = await server_users.revoke(store, args.user)
            print(f"revoked analyst user {revoked['user_name']} of {revoked['organization_id']}")
    finally:
        await store.close()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop where it is installed: the gateway's I/O is most of its work."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _backfill_with_progress_bar(settings: Settings, scope: BackfillScope) -> int:
    """Run the backfill, drawing done / total, rate and ETA (tqdm) from its progress lines."""
    bar: tqdm | None = None
    done = 0
    try:
        async for progress in runtime.backfill_progress(settings, scope):
            done, total = int(progress["done"]), int(progress["total"])  # type: ignore[call-overload]
            if bar is None:
                # What a resumed run did before is the bar's start, not part of its rate.
                bar = tqdm(total=total, initial=done, unit="event", unit_scale=True, desc="backfill", dynamic_ncols=True)
            bar.total = total
            bar.update(done - bar.n)
    finally:
        if bar is not None:
            bar.close()
    return done


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings)
        if args.command == "up":
            _run(up.run_up(settings))
        elif args.command == "gateway":
            runtime.run_gateway(settings)
        elif args.command == "worker":
            _run(runtime.run_worker(settings))
        elif args.command == "api":
            runtime.run_api(settings)
        elif args.command == "reports":
            _run(runtime.run_reports(settings))
        elif args.command == "token":
            departments = [d for d in args.departments.split(",") if d]
            try:
                print(runtime.mint_token(settings, sub=args.sub, role=args.role, organization_id=args.org, departments=departments))
            except ValueError as exc:
                print(f"lms-events: {exc}", file=sys.stderr)
                return 2
        elif args.command == "migrate":
            applied = _run(runtime.run_migrate(settings))
            print(f"applied migrations: {applied or 'none pending'}")
        elif args.command == "keys":
            _run(_keys(settings, args))
        elif args.command == "retention":
            _run(_retention(settings, args))
        elif args.command == "analysts":
            _run(_analysts(settings, args))
        elif args.command == "reference":
            sent = _run(runtime.run_reference_load(settings, args.file))
            print(f"sent {sent} domain events")
        elif args.command == "sql":
            answer = _run(sql_command.run_sql(settings, args.query, organization_id=args.org, fmt=args.format, url=args.url))
            sys.stdout.buffer.write(answer if answer.endswith(b"\n") or not answer else answer + b"\n")
        elif args.command == "backfill":
            scope = BackfillScope(since=args.since, organization_id=args.org, everything=args.all)
            done = _run(_backfill_with_progress_bar(settings, scope))
            print(f"backfill done: {done} events re-enriched")
    except LmsEventsError as exc:
        print(f"lms-events: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
