"""Real components as fixtures: Tansu broker, Redis, chDB, the gateway and the stream app.

chDB allows one data dir per process, so the whole session shares one
store; tests isolate themselves by unique organization ids.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypothesis.configuration import set_hypothesis_home_dir

from lms_events import embedded
from lms_events.clickhouse import ChdbStore, ClickHouseStore
from lms_events.migrations import migrate
from lms_events.settings import Settings
from lms_events.topics import ensure_topics
from streams.app import create_stream_app
from tests.support import Client, Gateway, SignedCounts, start_gateway

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that start `lms-events up` run one after another in one worker (they wait on
    processes and assert on timings), beside the rest of the suite in the other."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("up"))


# Hypothesis' example database and notes name this checkout's absolute paths:
# they are kept outside the repository, however pytest is started.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path.home() / ".cache" / "lms-events" / "hypothesis")


@pytest_asyncio.fixture(scope="session")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[embedded.ManagedProcess]:
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    process = await embedded.start_tansu(embedded.free_port(), log)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: embedded.ManagedProcess) -> str:
    return f"127.0.0.1:{broker.port}"


@pytest_asyncio.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A valkey-server of the session's own (free port, temporary dir): the suite
    never writes into the machine's Redis and leaves no keys behind."""
    valkey = await embedded.start_valkey(embedded.free_port(), tmp_path_factory.mktemp("valkey"))
    yield f"redis://127.0.0.1:{valkey.port}/0"
    valkey.stop()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lms-events-data")


@pytest.fixture(scope="session")
def settings(bootstrap: str, redis_url: str, data_dir: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        data_dir=data_dir,
        gateway_port=0,
        kafka_topic_partitions=2,
        sink_batch_within_s=0.2,
        kafka_publish_timeout_s=3.0,
        analytics_window_s=0.5,
        reports_retry_base_s=0.2,  # a failing report fails in a second, not a minute
    )


@pytest_asyncio.fixture(scope="session")
async def store(settings: Settings) -> AsyncIterator[ClickHouseStore]:
    settings.chdb_path.mkdir(parents=True, exist_ok=True)
    chdb_store = await asyncio.to_thread(ChdbStore, str(settings.chdb_path), settings.clickhouse_database)
    await migrate(chdb_store)
    yield chdb_store
    await chdb_store.close()


@pytest_asyncio.fixture(scope="session")
async def stream_app(settings: Settings, store: ClickHouseStore, bootstrap: str) -> AsyncIterator[Any]:
    await ensure_topics(settings, bootstrap)
    app = create_stream_app(settings, store)
    await app.start()
    yield app
    await app.stop()


@pytest_asyncio.fixture(scope="session")
async def gateway(settings: Settings, store: ClickHouseStore, stream_app: Any) -> AsyncIterator[Gateway]:
    runner, url = await start_gateway(settings, store)
    async with aiohttp.ClientSession() as session:
        yield Gateway(url, session, runner.app)
    await runner.cleanup()


@pytest_asyncio.fixture
async def client(gateway: Gateway) -> Client:
    """A client of a fresh organization with its own write key."""
    return await gateway.client()


@pytest_asyncio.fixture
async def signed_counts(store: ClickHouseStore) -> AsyncIterator[SignedCounts]:
    """What a read model counts from event_loads, for as long as the test runs."""
    counts = await SignedCounts.create(store)
    yield counts
    await counts.drop()
