"""What `lms-events keys ...` talks to: the running instance or the store itself.

While `lms-events up` runs on embedded chDB it owns the data dir, so the
commands go through its admin API; with a ClickHouse server, or when
nothing runs, they open the store directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from lms_events import retention, write_keys
from lms_events.retention import RetentionPolicy
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events.errors import ConfigError
from lms_events.instance import Instance, call_admin, running_instance
from lms_events.migrations import migrate
from lms_events.settings import Settings


class Control(Protocol):
    async def create_key(self, organization_id: str, environment: str, name: str) -> dict[str, Any]: ...

    async def list_keys(self, organization_id: str | None) -> list[dict[str, Any]]: ...

    async def revoke_key(self, key_id: str) -> dict[str, Any]: ...

    async def set_retention(self, organization_id: str, by_privacy_level: dict[str, int], by_category: dict[str, int]) -> dict[str, Any]: ...

    async def show_retention(self, organization_id: str) -> dict[str, Any]: ...


class StoreControl:
    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    async def create_key(self, organization_id: str, environment: str, name: str) -> dict[str, Any]:
        key, plaintext = await write_keys.create_key(
            self.store, organization_id=organization_id, environment=environment, name=name
        )
        return {**key.public(), "key": plaintext}

    async def list_keys(self, organization_id: str | None) -> list[dict[str, Any]]:
        return [k.public() for k in await write_keys.list_keys(self.store, organization_id=organization_id)]

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        return (await write_keys.revoke_key(self.store, key_id)).public()

    async def set_retention(self, organization_id: str, by_privacy_level: dict[str, int], by_category: dict[str, int]) -> dict[str, Any]:
        policy = RetentionPolicy(organization_id, by_privacy_level, by_category)
        return (await retention.set_policy(self.store, policy)).public()

    async def show_retention(self, organization_id: str) -> dict[str, Any]:
        return (await retention.policy_of(self.store, organization_id)).public()


class InstanceControl:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    async def create_key(self, organization_id: str, environment: str, name: str) -> dict[str, Any]:
        payload = {"organization_id": organization_id, "environment": environment, "name": name}
        return await call_admin(self.instance, "POST", "keys", payload)  # type: ignore[return-value]

    async def list_keys(self, organization_id: str | None) -> list[dict[str, Any]]:
        query = f"?organization_id={organization_id}" if organization_id else ""
        return await call_admin(self.instance, "GET", f"keys{query}")  # type: ignore[return-value]

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        return await call_admin(self.instance, "DELETE", f"keys/{key_id}")  # type: ignore[return-value]

    async def set_retention(self, organization_id: str, by_privacy_level: dict[str, int], by_category: dict[str, int]) -> dict[str, Any]:
        payload = {"by_privacy_level": by_privacy_level, "by_category": by_category}
        return await call_admin(self.instance, "PUT", f"retention/{organization_id}", payload)  # type: ignore[return-value]

    async def show_retention(self, organization_id: str) -> dict[str, Any]:
        return await call_admin(self.instance, "GET", f"retention/{organization_id}")  # type: ignore[return-value]


def no_product_here(settings: Settings) -> ConfigError:
    return ConfigError(
        "LMS_EVENTS_DATA_DIR",
        f"{settings.data_dir.resolve()} holds no lms-events data (no {settings.chdb_path.name}/ in it) and no "
        "`lms-events up` runs there: run this command where `lms-events up` ran (its data dir is "
        "`.lms-events` of that directory), set LMS_EVENTS_DATA_DIR to it, or set CLICKHOUSE_URL",
    )


@asynccontextmanager
async def control_plane(settings: Settings, *, may_create: bool = False) -> AsyncIterator[Control]:
    """The running instance, else the store. Without `may_create`, an embedded data dir
    that holds no product is refused rather than created empty (a command run from
    the wrong directory would otherwise answer "no keys" from a new, empty store)."""
    instance = running_instance(settings.data_dir) if settings.embedded_clickhouse else None
    if instance is not None:
        yield InstanceControl(instance)
        return
    if settings.embedded_clickhouse and not may_create and not settings.chdb_path.is_dir():
        raise no_product_here(settings)
    store = await open_store(settings)
    try:
        await migrate(store)
        yield StoreControl(store)
    finally:
        await store.close()
