"""Retention per organization, only ever shorter than the seed's caps
(schemas/privacy.json), in `organization_retention`.

Setting a policy does three things: records it (the gateways reload it
within LMS_EVENTS_KEYS_REFRESH_S and stamp new events with it), shortens
`retention_days` of the organization's rows already stored in every
events table, and has ClickHouse recompute their TTL at once, so rows
past the new retention are gone when the command returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

import schemas
from lms_events.audit import AuditEntry, write_now
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import LmsEventsError

EVENT_TABLES = ("events", "perf_events", "bi_events")
# Mutations applied before the statement returns, on every replica.
_SYNC = "SETTINGS mutations_sync = 2"


@dataclass(frozen=True)
class RetentionPolicy:
    organization_id: str
    by_privacy_level: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)

    def cap(self, privacy_level: str, category: str, seed_cap: int) -> int:
        """The retention of an event of this level and category: the seed's cap, or shorter."""
        return min(seed_cap, self.by_privacy_level.get(privacy_level, seed_cap), self.by_category.get(category, seed_cap))

    def public(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "by_privacy_level": self.by_privacy_level, "by_category": self.by_category}


def seed_caps() -> tuple[dict[str, int], dict[str, int]]:
    rules = schemas.load("privacy.json")["retention_days"]
    return rules["by_privacy_level"], rules["by_category"]


def _category_caps() -> dict[str, int]:
    level_caps, category_caps = seed_caps()
    longest = max(level_caps.values())
    return {category: category_caps.get(category, longest) for category in schemas.load("privacy.json")["consent_categories"]}


def _checked(requested: Mapping[str, int], caps: Mapping[str, int], what: str) -> dict[str, int]:
    for name, days in requested.items():
        if name not in caps:
            raise LmsEventsError(f"unknown {what} {name!r}; one of {', '.join(caps)}")
        if not isinstance(days, int) or not 1 <= days <= caps[name]:
            raise LmsEventsError(f"{what} {name}: an organization keeps 1 to {caps[name]} days (the seed's cap), got {days!r}")
    return dict(requested)


async def set_policy(store: ClickHouseStore, policy: RetentionPolicy) -> RetentionPolicy:
    checked = RetentionPolicy(
        policy.organization_id,
        _checked(policy.by_privacy_level, seed_caps()[0], "privacy level"),
        _checked(policy.by_category, _category_caps(), "category"),
    )
    await store.execute(
        "INSERT INTO organization_retention (organization_id, by_privacy_level, by_category, updated_at, _version) VALUES "
        "({org:String}, {levels:String}, {categories:String}, now64(3), {version:UInt64})",
        {
            "org": checked.organization_id,
            "levels": orjson.dumps(checked.by_privacy_level).decode(),
            "categories": orjson.dumps(checked.by_category).decode(),
            "version": time.time_ns() // 1000,
        },
    )
    await _shorten_stored(store, checked)
    await write_now(
        store,
        AuditEntry(
            organization_id=checked.organization_id,
            actor="cli",
            actor_role="operator",
            action="retention.change",
            target="organization_retention",
            detail={"by_privacy_level": checked.by_privacy_level, "by_category": checked.by_category},
        ),
    )
    return checked


async def _shorten_stored(store: ClickHouseStore, policy: RetentionPolicy) -> None:
    for table in EVENT_TABLES:
        for column, limits in (("privacy_level", policy.by_privacy_level), ("event_category", policy.by_category)):
            for value, days in limits.items():
                await store.execute(
                    f"ALTER TABLE {table} UPDATE retention_days = least(retention_days, {{days:UInt16}}) "
                    f"WHERE organization_id = {{org:String}} AND {column} = {{value:String}} AND retention_days > {{days:UInt16}} {_SYNC}",
                    {"days": days, "org": policy.organization_id, "value": value},
                )
        await store.execute(f"ALTER TABLE {table} MATERIALIZE TTL {_SYNC}")


async def load_policies(store: ClickHouseStore) -> dict[str, RetentionPolicy]:
    rows = await store.query("SELECT organization_id, by_privacy_level, by_category FROM organization_retention FINAL")
    return {
        row["organization_id"]: RetentionPolicy(
            row["organization_id"], orjson.loads(row["by_privacy_level"]), orjson.loads(row["by_category"])
        )
        for row in rows
    }


async def policy_of(store: ClickHouseStore, organization_id: str) -> RetentionPolicy:
    return (await load_policies(store)).get(organization_id) or RetentionPolicy(organization_id)
