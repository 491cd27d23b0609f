"""Helpers shared by the tests: polling with a deadline, event factories, gateway client."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from analytics.analyst.app import add_query_api
from analytics.app import add_api
from ingest.app import create_app
from reports.app import add_reports
from ingest.keys import KEYRING, STORE
from lms_events.clickhouse import ClickHouseStore
from lms_events.docs import add_docs
from lms_events.settings import Settings
from lms_events.write_keys import create_key
from lms_events.topics import RAW_EVENTS
from streams.reference import topic_and_key
from streams.reference_store import REFERENCE_TABLE

T = TypeVar("T")

DEFAULT_DEADLINE_S = 30.0


async def eventually(
    probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], *, timeout: float = DEFAULT_DEADLINE_S
) -> T:
    """Poll `probe` until `until(result)` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    result = await probe()
    while not until(result):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last result: {result!r}")
        await asyncio.sleep(0.1)
        result = await probe()
    return result


def new_event(**overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": overrides.pop("event_id", None) or str(uuid.uuid4()),
        "event_type": "game_stage_complete",
        "timestamp": "2026-01-27T14:30:45.123Z",
        "user_id": "usr_12345",
        "session_id": "sess_67890abcdef",
        "organization_id": "org_54321",
        "device_info": {"user_agent": "Mozilla/5.0", "platform": "desktop", "browser": "chrome", "version": "120.0"},
        "context": {"page_url": "/student/assignment-play", "assignment_id": "asg_789"},
        "properties": {"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 87, "max_score": 100, "passed": True},
        "privacy_level": "standard",
    }
    event.update(overrides)
    return event


def unique_org() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"


@dataclass
class Gateway:
    """A running gateway, and a way to get write keys for fresh organizations."""

    url: str
    session: aiohttp.ClientSession
    app: web.Application

    async def key_for(self, organization_id: str, environment: str = "development") -> str:
        _, plaintext = await create_key(self.app[STORE], organization_id=organization_id, environment=environment)
        await self.app[KEYRING].refresh()
        return plaintext

    async def client(self, organization_id: str | None = None) -> Client:
        organization_id = organization_id or unique_org()
        return Client(self, organization_id, await self.key_for(organization_id))


@dataclass
class Client:
    """A client app of one organization, posting with its write key."""

    gateway: Gateway
    organization_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def event(self, **overrides: Any) -> dict[str, Any]:
        return new_event(organization_id=self.organization_id, **overrides)

    async def post(self, path: str, payload: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if payload is not None:
            kwargs["json"] = payload
        async with self.gateway.session.post(f"{self.gateway.url}{path}", headers=headers, **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def post_batch(self, events: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.post("/v1/batch", events, **kwargs)


async def start_gateway(
    settings: Settings, store: ClickHouseStore | None = None, *, admin_token: str | None = None
) -> tuple[web.AppRunner, str]:
    app = create_app(settings, store=store, admin_token=admin_token)
    if store is not None:  # as under `lms-events up`: the process owning ClickHouse serves the read side too
        add_api(app, settings, store=store)
        add_query_api(app)
        add_reports(app, settings, store=store)
    return await serve(app)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """`app` documented (add_docs, as every entry point does) and listening on a free port."""
    add_docs(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def rows_for_org(store: ClickHouseStore, table: str, organization_id: str, columns: str = "*") -> list[dict[str, Any]]:
    return await store.query(
        f"SELECT {columns} FROM {table} FINAL WHERE organization_id = {{org:String}} ORDER BY event_id",
        {"org": organization_id},
    )


@dataclass
class SignedCounts:
    """A stand-in read model: sum(_sign) and sum(_sign * duration_ms) from `event_loads` per
    organization and course, in a SummingMergeTree fed by a view, as the rollups will be."""

    store: ClickHouseStore
    table: str

    @classmethod
    async def create(cls, store: ClickHouseStore) -> SignedCounts:
        counts = cls(store, f"signed_counts_{uuid.uuid4().hex[:12]}")
        await store.execute(
            f"CREATE TABLE {counts.table} (organization_id String, course_id String, events Int64, duration_ms Int64) "
            # As events: a retried insert (same token) is dropped only by a table keeping a window of tokens.
            "ENGINE = SummingMergeTree ORDER BY (organization_id, course_id) SETTINGS non_replicated_deduplication_window = 1000"
        )
        await store.execute(
            f"CREATE MATERIALIZED VIEW {counts.table}_view TO {counts.table} AS SELECT organization_id, course_id, "
            "sum(_sign) AS events, sum(_sign * toInt64(ifNull(duration_ms, 0))) AS duration_ms "
            "FROM event_loads GROUP BY organization_id, course_id"
        )
        return counts

    async def drop(self) -> None:
        await self.store.execute(f"DROP VIEW IF EXISTS {self.table}_view")
        await self.store.execute(f"DROP TABLE IF EXISTS {self.table}")

    async def of(self, organization_id: str) -> dict[str, tuple[int, int]]:
        """course_id -> (events, duration_ms) counted for the organization."""
        rows = await self.store.query(
            f"SELECT course_id, sum(events) AS events, sum(duration_ms) AS duration_ms FROM {self.table} "
            "WHERE organization_id = {org:String} GROUP BY course_id",
            {"org": organization_id},
        )
        return {row["course_id"]: (int(row["events"]), int(row["duration_ms"])) for row in rows}


def accepted(event: dict[str, Any], received_at: str = "2026-01-27T14:30:46.000Z") -> dict[str, Any]:
    """An event as the gateway publishes it to `events.raw` (stamped, retention resolved)."""
    return {"retention_days": 2555, "received_at": received_at, **event}


async def produce(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    """Send (topic, key, value) messages with acks=all, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_events(bootstrap: str, events: list[dict[str, Any]], key: bytes = b"session") -> None:
    await produce(bootstrap, [(RAW_EVENTS, key, orjson.dumps({"events": events}))])


async def produce_domain_events(bootstrap: str, domain_events: list[dict[str, Any]]) -> None:
    messages = []
    for event in domain_events:
        topic, key = topic_and_key(event)
        messages.append((topic, key.encode(), orjson.dumps(event)))
    await produce(bootstrap, messages)


async def reference_entity(store: ClickHouseStore, organization_id: str, kind: str, entity_id: str) -> list[dict[str, Any]]:
    return await store.query(
        f"SELECT attributes FROM {REFERENCE_TABLE} FINAL "
        "WHERE organization_id = {org:String} AND kind = {k:String} AND entity_id = {id:String}",
        {"org": organization_id, "k": kind, "id": entity_id},
    )


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    """A JSON-lines file of `events` (a reference file for `lms-events reference load`)."""
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    return path
