"""Settings from the environment, the compose file that mirrors them, migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis import asyncio as aioredis

from ingest.app import create_app
from lms_events import embedded
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import ConfigError, EmbeddedStartError
from lms_events.migrations import applied_versions, discover, migrate
from lms_events.settings import Settings, env_names

ROOT = Path(__file__).resolve().parent.parent


def test_settings_from_env_parses_types() -> None:
    settings = Settings.from_env(
        {
            "LMS_EVENTS_ENV": "production",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "LMS_EVENTS_GATEWAY_PORT": "9000",
            "LMS_EVENTS_DATA_DIR": "/var/lib/lms",
            "LMS_EVENTS_SINK_BATCH_WITHIN_S": "0.25",
        }
    )
    assert settings.environment == "production"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.gateway_port == 9000
    assert settings.data_dir == Path("/var/lib/lms")
    assert settings.sink_batch_within_s == 0.25
    assert settings.embedded_clickhouse and not settings.embedded_kafka
    assert settings.json_logs


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"LMS_EVENTS_ENV": "staging-ish"}, "LMS_EVENTS_ENV"),
        ({"LMS_EVENTS_GATEWAY_PORT": "eighty"}, "LMS_EVENTS_GATEWAY_PORT"),
        ({"LMS_EVENTS_GATEWAY_PORT": "70000"}, "LMS_EVENTS_GATEWAY_PORT"),
        ({"LMS_EVENTS_KAFKA_PARTITIONS": "0"}, "LMS_EVENTS_KAFKA_PARTITIONS"),
        ({"LMS_EVENTS_LOG_FORMAT": "xml"}, "LMS_EVENTS_LOG_FORMAT"),
        ({"LMS_EVENTS_EMBEDDED_REDIS_PORT": "70000"}, "LMS_EVENTS_EMBEDDED_REDIS_PORT"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ)
    assert info.value.variable == variable


def test_compose_file_matches_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "clickhouse", "redis", "gateway", "worker"} <= set(services)
    for name in ("kafka", "clickhouse", "redis", "gateway", "worker"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    known = set(env_names().values())
    for role in ("gateway", "worker"):
        environment = services[role]["environment"]
        assert set(environment) <= known, f"{role} sets unknown variables: {set(environment) - known}"
        assert {"KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "REDIS_URL", "LMS_EVENTS_ENV"} <= set(environment)
        Settings.from_env({k: str(v) for k, v in environment.items()})  # parses without error
    assert services["gateway"]["command"] == ["gateway"]
    assert services["worker"]["command"] == ["worker"]


def test_migrations_are_numbered() -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(versions) and versions[0] == 1


async def test_migrate_twice_applies_nothing_the_second_time(store: ClickHouseStore) -> None:
    assert await migrate(store) == []
    assert {m.version for m in discover()} <= await applied_versions(store)


async def test_valkey_from_the_wheel_starts_and_stops(tmp_path: Path) -> None:
    valkey = await embedded.start_valkey(embedded.free_port(), tmp_path)
    try:
        assert await embedded.redis_reachable(f"redis://127.0.0.1:{valkey.port}/0")
    finally:
        valkey.stop()
    assert not valkey.running


async def test_configured_redis_is_used_as_is(tmp_path: Path) -> None:
    url, started = await embedded.resolve_redis("redis://example.invalid:6379/0", tmp_path)
    assert url == "redis://example.invalid:6379/0" and started is None


def test_a_gateway_without_redis_url_names_the_variable() -> None:
    # No fallback to 127.0.0.1:6379: that Redis may belong to something else.
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9092", clickhouse_url="http://clickhouse:8123")
    with pytest.raises(ConfigError) as info:
        create_app(settings)
    assert info.value.variable == "REDIS_URL"


async def test_unconfigured_redis_is_our_own_valkey_persisting_in_the_data_dir(tmp_path: Path) -> None:
    port = embedded.free_port()
    url, valkey = await embedded.resolve_redis(None, tmp_path, port)
    assert valkey is not None and url == f"redis://127.0.0.1:{port}/0"
    client = aioredis.from_url(url)
    try:
        assert await client.config_get("bind") == {"bind": "127.0.0.1"}
        assert await client.config_get("appendfsync") == {"appendfsync": "everysec"}
        await client.set("kept", "across restarts")
    finally:
        await client.aclose()
    valkey.stop()

    url, valkey = await embedded.resolve_redis(None, tmp_path)  # any free port, same data dir
    assert valkey is not None
    client = aioredis.from_url(url)
    try:
        assert await client.get("kept") == b"across restarts"
    finally:
        await client.aclose()
        valkey.stop()
    assert (tmp_path / "valkey").is_dir()


async def test_embedded_valkey_refuses_a_port_another_server_answers_on(tmp_path: Path, redis_url: str) -> None:
    taken = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(EmbeddedStartError, match="already in use"):
        await embedded.resolve_redis(None, tmp_path, taken)
