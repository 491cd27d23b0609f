"""Consent and age band per user: what the gateway may collect about them.

A consent record is kept per (organization, user). It is set
- by the platform through `PUT /v1/consent/{user_id}` (write key of the org), or
- by a `UserCreated` domain event that carries `consent`, `ageBand` or
  `parentalConsent`.
Either way the record is first published to Kafka `consent.records`
(acks=all), which the stream app loads into ClickHouse `consent_records`
(the durable copy, reloaded into Redis at start), then written to Redis,
which serves lookups. A user without a record gets the defaults of
`schemas/privacy.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import structlog
from cachetools import TTLCache
from redis.exceptions import RedisError

import schemas
from ingest.redis_pipe import PipelinedRedis
from lms_events import keyset
from lms_events.clickhouse import ClickHouseStore

log = structlog.get_logger(__name__)

KEY_PREFIX = "lms:consent:"
# Other gateway processes see a change within this many seconds.
LOCAL_TTL_S = 10.0
LOCAL_ENTRIES = 100_000


def consent_key(organization_id: str, user_id: str) -> str:
    return f"{KEY_PREFIX}{organization_id}:{user_id}"


@dataclass(frozen=True)
class ConsentRecord:
    organization_id: str
    user_id: str
    categories: dict[str, bool] = field(default_factory=dict)
    age_band: str | None = None
    parental_consent: bool | None = None
    updated_at: str = ""

    def allows(self, category: str) -> bool:
        if category in self.categories:
            return self.categories[category]
        return bool(schemas.load("privacy.json")["default_consent"].get(category, True))

    @property
    def coppa_restricted(self) -> bool:
        """Under 13 without parental consent: no PII may be stored."""
        return self.age_band == schemas.load("privacy.json")["coppa_age_band"] and not self.parental_consent

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> ConsentRecord:
        data = orjson.loads(raw) if isinstance(raw, (bytes, str)) else raw
        return cls(
            organization_id=data["organization_id"],
            user_id=data["user_id"],
            categories={str(k): bool(v) for k, v in (data.get("categories") or {}).items()},
            age_band=data.get("age_band"),
            parental_consent=data.get("parental_consent"),
            updated_at=data.get("updated_at", ""),
        )


_NOT_CACHED = object()


class ConsentStore:
    def __init__(self, redis: PipelinedRedis) -> None:
        self._redis = redis
        self._local: TTLCache[str, ConsentRecord | None] = TTLCache(maxsize=LOCAL_ENTRIES, ttl=LOCAL_TTL_S)

    async def for_users(self, organization_id: str, user_ids: set[str]) -> dict[str, ConsentRecord | None]:
        """Each user's record (None: no record, the defaults apply)."""
        found: dict[str, ConsentRecord | None] = {}
        missing: dict[str, str] = {}  # user_id -> its Redis key
        for user_id in user_ids:
            key = consent_key(organization_id, user_id)
            # one lookup: an entry can expire between `in` and `[]` (a KeyError, a 500, seen in the soak)
            cached = self._local.get(key, _NOT_CACHED)
            if cached is _NOT_CACHED:
                missing[user_id] = key
            else:
                found[user_id] = cached  # type: ignore[assignment]
        if missing:
            try:
                values = await self._redis.execute("MGET", *missing.values())
            except RedisError as exc:
                # Without the records we cannot tell an opt-out from a default:
                # fall back to defaults, which the school's agreement covers.
                log.warning("consent_redis_unavailable", error=str(exc), users=len(missing))
                values = [None] * len(missing)
            for (user_id, key), value in zip(missing.items(), values, strict=True):
                record = ConsentRecord.from_json(value) if value else None
                self._local[key] = record
                found[user_id] = record
        return found

    async def put(self, record: ConsentRecord) -> None:
        key = consent_key(record.organization_id, record.user_id)
        await self._redis.execute("SET", key, record.to_json())
        self._local[key] = record

    async def put_many(self, records: list[ConsentRecord]) -> None:
        if not records:
            return
        keyed = {consent_key(r.organization_id, r.user_id): r for r in records}
        await self._redis.execute("MSET", *(part for key, r in keyed.items() for part in (key, r.to_json())))
        self._local.update(keyed)


async def reload_consent(store: ClickHouseStore, consent: ConsentStore) -> int:
    """Copy the durable consent records into Redis (it may have restarted empty)."""
    loaded = 0
    columns = "organization_id, user_id, categories, age_band, parental_consent, updated_at"
    async for rows in keyset.pages(store, columns, "consent_records", "user_id"):
        await consent.put_many(
            [ConsentRecord.from_json({**row, "categories": orjson.loads(row["categories"])}) for row in rows]
        )
        loaded += len(rows)
    if loaded:
        log.info("consent_reloaded", records=loaded)
    return loaded
