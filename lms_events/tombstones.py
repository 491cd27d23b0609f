"""Tombstones of erased users: how every stage recognises a person who was
erased without keeping who they were.

A tombstone is a keyed digest of (organization, user id): HMAC-SHA-256
under a key derived from the PII secret (LMS_EVENTS_PII_SECRET, the same
on every process), so it matches the person's later events but cannot be
turned back into the id, nor confirmed by someone guessing ids without
the secret. An erasure writes the digest of the platform's id and of its
`pii` pseudonym (pii events carry the pseudonym), to ClickHouse
`erasure_tombstones` (durable) and to Redis (what the gateway asks, per
request, no local cache: an erasure applies at the next request).

The stream sink keeps the set in memory (`TombstoneSet`), reloaded
incrementally at each micro-batch, and drops the events it names. Each
micro-batch runs inside `TombstoneSet.loading()`, so an erasure in the
same process can wait (`settled`) until every batch that started before
its tombstone has finished: after that no insert can bring the person
back, and deleting their rows is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Iterable

from lms_events.clickhouse import ClickHouseStore

TABLE = "erasure_tombstones"
REDIS_PREFIX = "lms:erased:"
_KEY_LABEL = b"lms-events erasure tombstones"
# The reload re-reads this far before its last look: a tombstone written by another
# process whose clock is behind is not missed.
RELOAD_OVERLAP_S = 60
_CACHE_ENTRIES = 200_000


class Digester:
    """(organization, user id) -> tombstone digest, memoised (a batch names few users many times)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self._cache: dict[tuple[str, str], str] = {}

    def digest(self, organization_id: str, user_id: str) -> str:
        pair = (organization_id, user_id)
        found = self._cache.get(pair)
        if found is None:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            message = organization_id.encode() + b"\x1f" + user_id.encode()
            found = self._cache[pair] = hmac.digest(self._key, message, "sha256")[:16].hex()
        return found


def redis_key(organization_id: str, digest: str) -> str:
    return f"{REDIS_PREFIX}{organization_id}:{digest}"


class TombstoneSet:
    """The tombstones a stream worker drops events by, and the barrier erasures wait on."""

    def __init__(self, digester: Digester) -> None:
        self.digester = digester
        self._erased: set[tuple[str, str]] = set()
        self._seen_until_ms = 0
        self.generation = 0
        self._loading: Counter[int] = Counter()
        self._changed = asyncio.Condition()

    def add(self, organization_id: str, digests: Iterable[str]) -> None:
        self._erased.update((organization_id, digest) for digest in digests)
        self.generation += 1

    async def reload(self, store: ClickHouseStore) -> None:
        """Tombstones written since the last look (with an overlap for clock skew)."""
        since = max(0, self._seen_until_ms - RELOAD_OVERLAP_S * 1000)
        rows = await store.query(
            f"SELECT organization_id, digest, toUnixTimestamp64Milli(written_at) AS at FROM {TABLE} "
            "WHERE written_at >= fromUnixTimestamp64Milli(toInt64({since:Int64}), 'UTC')",
            {"since": since},
        )
        fresh = {(row["organization_id"], row["digest"]) for row in rows} - self._erased
        if fresh:
            self._erased |= fresh
            self.generation += 1
        if rows:
            self._seen_until_ms = max(self._seen_until_ms, max(int(row["at"]) for row in rows))

    def erased(self, organization_id: str | None, user_id: str | None) -> bool:
        if not self._erased or not user_id:
            return False
        return (organization_id or "", self.digester.digest(organization_id or "", user_id)) in self._erased

    @contextlib.asynccontextmanager
    async def loading(self) -> AsyncIterator[None]:
        """One micro-batch of a sink: filtered with the tombstones known when it began."""
        started = self.generation
        self._loading[started] += 1
        try:
            yield
        finally:
            self._loading[started] -= 1
            if not self._loading[started]:
                del self._loading[started]
            async with self._changed:
                self._changed.notify_all()

    async def settled(self, generation: int, timeout_s: float) -> bool:
        """Whether every batch begun before `generation` finished within the timeout."""
        deadline = time.monotonic() + timeout_s
        async with self._changed:
            while any(started < generation for started in self._loading):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return True


# One set per ClickHouse store in a process: under `lms-events up` the stream
# worker's sink and the API's erasure jobs share the store, and so this set, which
# is how an erasure waits for the sink's batches in flight (as streams.sink's
# lock serialises backfill and the sink). Weak: a closed store takes its set along.
_SETS: weakref.WeakKeyDictionary[object, TombstoneSet] = weakref.WeakKeyDictionary()


def for_store(store: ClickHouseStore, secret: bytes) -> TombstoneSet:
    found = _SETS.get(store)
    if found is None:
        found = _SETS[store] = TombstoneSet(Digester(secret))
    return found
