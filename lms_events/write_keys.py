"""Write keys: created, listed and revoked in ClickHouse `write_keys`.

A key reads `lmsk_<environment>_<key id>_<secret>`; it is shown once, at
creation, and only its SHA-256 is stored. A key belongs to one
organization and one environment and can only write.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from lms_events.audit import AuditEntry, write_now
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import LmsEventsError

KEY_PREFIX = "lmsk"
ENVIRONMENTS = ("production", "development")

_COLUMNS = "key_id, key_hash, organization_id, environment, name, created_at, revoked_at"


class UnknownKey(LmsEventsError):
    pass


@dataclass(frozen=True)
class WriteKey:
    key_id: str
    key_hash: str
    organization_id: str
    environment: str
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What `keys list` shows: everything but the hash."""
        data = asdict(self)
        del data["key_hash"]
        return data


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


async def _insert(store: ClickHouseStore, key: WriteKey) -> None:
    await store.execute(
        f"INSERT INTO write_keys ({_COLUMNS}, _version) VALUES "
        "({key_id:String}, {key_hash:String}, {organization_id:String}, {environment:String}, {name:String}, "
        "parseDateTime64BestEffort({created_at:String}, 3, 'UTC'), "
        "parseDateTime64BestEffortOrNull({revoked_at:String}, 3, 'UTC'), {version:UInt64})",
        {**asdict(key), "revoked_at": key.revoked_at or "", "version": time.time_ns() // 1000},
    )


async def _audit(store: ClickHouseStore, key: WriteKey, action: str) -> None:
    # Keys are managed by the operator's commands (`lms-events keys`, `up`'s demo key).
    entry = AuditEntry(
        organization_id=key.organization_id,
        actor="cli",
        actor_role="operator",
        action=action,
        target=f"write_keys/{key.key_id}",
        detail={"environment": key.environment, "name": key.name},
    )
    await write_now(store, entry)


async def create_key(
    store: ClickHouseStore, *, organization_id: str, environment: str, name: str = ""
) -> tuple[WriteKey, str]:
    """A new key; returns its record and the plaintext, which is never stored."""
    if environment not in ENVIRONMENTS:
        raise LmsEventsError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
    if not organization_id or len(organization_id) > 128:
        raise LmsEventsError("organization id must be 1 to 128 characters")
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{environment[:4]}_{key_id}_{secrets.token_urlsafe(24)}"
    key = WriteKey(key_id, hash_key(plaintext), organization_id, environment, name, _now())
    await _insert(store, key)
    await _audit(store, key, "keys.create")
    return key, plaintext


def _from_row(row: dict[str, Any]) -> WriteKey:
    return WriteKey(**{name: row[name] for name in _COLUMNS.split(", ")})


async def list_keys(store: ClickHouseStore, *, organization_id: str | None = None) -> list[WriteKey]:
    where = "WHERE organization_id = {org:String}" if organization_id else ""
    rows = await store.query(
        f"SELECT {_COLUMNS} FROM write_keys FINAL {where} ORDER BY organization_id, created_at",
        {"org": organization_id} if organization_id else None,
    )
    return [_from_row(row) for row in rows]


async def revoke_key(store: ClickHouseStore, key_id: str) -> WriteKey:
    rows = await store.query(f"SELECT {_COLUMNS} FROM write_keys FINAL WHERE key_id = {{id:String}}", {"id": key_id})
    if not rows:
        raise UnknownKey(f"no write key with id {key_id!r}")
    key = _from_row(rows[0])
    if key.active:
        key = WriteKey(**{**asdict(key), "revoked_at": _now()})
        await _insert(store, key)
        await _audit(store, key, "keys.revoke")
    return key


async def active_keys(store: ClickHouseStore) -> dict[str, WriteKey]:
    """Key hash -> key, for the gateway's lookup."""
    rows = await store.query(f"SELECT {_COLUMNS} FROM write_keys FINAL WHERE revoked_at IS NULL")
    return {row["key_hash"]: _from_row(row) for row in rows}
