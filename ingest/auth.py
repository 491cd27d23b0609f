"""Who is writing: `Authorization: Bearer <write key>` -> the key's organization.

The gateway keeps the active keys in memory (by SHA-256) and reloads them
from ClickHouse every `keys_refresh_s`, so a check costs a hash and a dict
lookup, and a revocation applies everywhere within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import StorageError, Unauthorized
from lms_events.write_keys import WriteKey, active_keys, hash_key

log = structlog.get_logger(__name__)


class KeyRing:
    def __init__(self, store: ClickHouseStore, *, environment: str) -> None:
        self._store = store
        self._environment = environment
        self._keys: dict[str, WriteKey] = {}

    async def refresh(self) -> None:
        self._keys = await active_keys(self._store)

    async def refresh_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(StorageError):
                await self.refresh()

    def authenticate(self, request: web.Request) -> WriteKey:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing write key: send 'Authorization: Bearer <write key>'", field="Authorization")
        key = self._keys.get(hash_key(token.strip()))
        if key is None:
            raise Unauthorized("unknown or revoked write key", field="Authorization")
        if key.environment != self._environment:
            raise Unauthorized(
                f"this write key is for {key.environment}; this gateway runs {self._environment}",
                field="Authorization",
            )
        return key
