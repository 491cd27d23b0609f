"""Backfill: re-enrich stored events once the reference data they lacked arrived.

Candidates are the `events` rows whose `enrichment_missing` is not empty
(or, with `everything`, every row in scope, to repair values that went
stale when reference data changed), optionally since a day and for one
organization. They are read in bounded batches in keyset order
(organization_id, event_id), re-enriched with the same function as the
stream against the durable reference copy, and loaded like the stream
loads (`EventLoadSink`): only events whose enrichment changed are written,
into `event_loads`, as a -1 row of the stored values and a +1 row of the
new ones with a higher `_version`, so the read models move the event and
ReplacingMergeTree keeps the re-enriched row.

Resumable: after each batch a checkpoint (the last key done and the
count) goes to `backfill_checkpoints` under a job id derived from the
scope; a run of the same scope continues after it. A crash between the
insert and the checkpoint re-does one batch, which is harmless: its
events are stored re-enriched by then, so nothing is written again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import orjson
import structlog

from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import StorageError
from streams import reference_store
from streams.enrich import Enricher
from streams.event_batch import EventBatch
from streams.reference import EntityId, Kind
from streams.route import EVENTS_TABLE
from streams.sink import EventLoadSink, load_version

log = structlog.get_logger(__name__)

BATCH_ROWS = 2_000
# Lookup chains are at most user, content -> course -> enrollment deep.
MAX_LOOKUP_ROUNDS = 3
# Columns of a stored row that rebuild the event the stream saw.
EVENT_COLUMNS = (
    "event_id, event_type, event_category, timestamp, received_at, is_late, client_ip, organization_id, user_id, session_id, "
    "privacy_level, retention_days, device_info, context, properties"
)


@dataclass(frozen=True, kw_only=True)
class BackfillScope:
    since: date | None = None
    organization_id: str | None = None
    # Re-enrich every row in scope, not only those with missing references.
    everything: bool = False

    @property
    def job_id(self) -> str:
        return hashlib.sha256(orjson.dumps(self.as_json())).hexdigest()[:32]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "since": self.since.isoformat() if self.since else None}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> BackfillScope:
        since = payload.get("since")
        return cls(
            since=date.fromisoformat(since) if since else None,
            organization_id=payload.get("organization_id") or None,
            everything=bool(payload.get("everything")),
        )


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed_s: float
    resumed_from: int
    finished: bool

    @property
    def rate(self) -> float:
        """Events re-enriched per second in this run."""
        return (self.done - self.resumed_from) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1), "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}


@dataclass(frozen=True)
class _Checkpoint:
    cursor: tuple[str, str]
    done: int


def _where(scope: BackfillScope) -> tuple[str, dict[str, Any]]:
    clauses = [] if scope.everything else ["notEmpty(enrichment_missing)"]
    params: dict[str, Any] = {}
    if scope.since is not None:
        clauses.append("timestamp >= {since:Date}")
        params["since"] = scope.since
    if scope.organization_id is not None:
        clauses.append("organization_id = {org:String}")
        params["org"] = scope.organization_id
    return " AND ".join(clauses) or "1", params


async def _checkpoint(store: ClickHouseStore, scope: BackfillScope) -> _Checkpoint | None:
    found = await store.query(
        "SELECT cursor_org, cursor_event_id, done, finished FROM backfill_checkpoints FINAL WHERE job_id = {job:String}",
        {"job": scope.job_id},
    )
    if not found or found[0]["finished"]:
        return None
    return _Checkpoint((found[0]["cursor_org"], found[0]["cursor_event_id"]), int(found[0]["done"]))


async def _save_checkpoint(store: ClickHouseStore, scope: BackfillScope, cursor: tuple[str, str], done: int, finished: bool) -> None:
    await store.execute(
        "INSERT INTO backfill_checkpoints (job_id, scope, cursor_org, cursor_event_id, done, finished, _version) "
        "VALUES ({job:String}, {scope:String}, {org:String}, {event:String}, {done:UInt64}, {finished:Bool}, {version:UInt64})",
        {
            "job": scope.job_id,
            "scope": orjson.dumps(scope.as_json()).decode(),
            "org": cursor[0],
            "event": cursor[1],
            "done": done,
            "finished": finished,
            "version": load_version(),
        },
    )


def _stored_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """The event as the stream saw it, rebuilt from a stored row."""
    return {
        **row,
        "retention_days": int(row["retention_days"]),
        "device_info": orjson.loads(row["device_info"] or "{}"),
        "context": orjson.loads(row["context"] or "{}"),
        "properties": orjson.loads(row["properties"] or "{}"),
    }


class _RecordingLookup(reference_store.EntityMap):
    """An EntityMap that notes every entity enrichment asks for."""

    def __init__(self, entities: dict[EntityId, dict[str, Any]]) -> None:
        super().__init__(entities)
        self.asked: set[EntityId] = set()

    def get(self, kind: Kind, organization_id: str, key: str) -> Mapping[str, Any] | None:
        self.asked.add(EntityId(kind, organization_id, key))
        return super().get(kind, organization_id, key)


async def _references_for(store: ClickHouseStore, events: list[dict[str, Any]]) -> reference_store.EntityMap:
    """The stored reference entities enrichment of these events looks up.

    Enrichment itself says what it needs: run it, load what it asked for,
    and again while the answers lead to new questions (a content's course
    leads to the enrollment in that course).
    """
    lookup = _RecordingLookup({})
    loaded: set[EntityId] = set()
    for _ in range(MAX_LOOKUP_ROUNDS):
        Enricher(lookup).columns(events)
        wanted = lookup.asked - loaded
        if not wanted:
            break
        lookup.entities.update(await reference_store.load_entities(store, wanted))
        loaded |= wanted
    return lookup


async def run_backfill(store: ClickHouseStore, scope: BackfillScope, *, batch_rows: int = BATCH_ROWS) -> AsyncIterator[Progress]:
    """Re-enrich the candidates of `scope`, yielding progress after each batch and at the end."""
    where, params = _where(scope)
    checkpoint = await _checkpoint(store, scope)
    cursor, done = (checkpoint.cursor, checkpoint.done) if checkpoint else (("", ""), 0)
    resumed_from = done
    after = "(organization_id, event_id) > ({cursor_org:String}, {cursor_event:String})"
    remaining = await store.query(
        f"SELECT count() AS n FROM {EVENTS_TABLE} FINAL WHERE {where} AND {after}",
        {**params, "cursor_org": cursor[0], "cursor_event": cursor[1]},
    )
    total = done + int(remaining[0]["n"])
    sink = await EventLoadSink.for_store(store)
    started = time.monotonic()
    log.info("backfill_started", job=scope.job_id, total=total, resumed_from=resumed_from)
    yield Progress(done, total, 0.0, resumed_from, finished=False)
    while True:
        batch = await store.query(
            f"SELECT {EVENT_COLUMNS} FROM {EVENTS_TABLE} FINAL WHERE {where} AND {after} "
            "ORDER BY organization_id, event_id LIMIT {limit:UInt32}",
            {**params, "cursor_org": cursor[0], "cursor_event": cursor[1], "limit": batch_rows},
        )
        if not batch:
            break
        events = [_stored_event(row) for row in batch]
        lookup = await _references_for(store, events)
        version = load_version()
        cursor = (batch[-1]["organization_id"], batch[-1]["event_id"])
        reenriched = EventBatch(version, lookup)
        reenriched.add(events, cursor)
        stored, unconvertible = reenriched.to_arrow()
        if unconvertible:
            raise StorageError(f"stored events that cannot be written back: {unconvertible[0][1]}")
        await sink.write_arrow(stored, token=f"backfill:{scope.job_id}:{cursor[0]}:{cursor[1]}:{version}")
        done += len(batch)
        await _save_checkpoint(store, scope, cursor, done, finished=False)
        yield Progress(done, max(total, done), time.monotonic() - started, resumed_from, finished=False)
    await _save_checkpoint(store, scope, cursor, done, finished=True)
    log.info("backfill_finished", job=scope.job_id, done=done)
    yield Progress(done, done, time.monotonic() - started, resumed_from, finished=True)
