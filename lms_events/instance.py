"""Find and talk to the running `lms-events up` of a data dir.

chDB is in-process: while `up` runs, it owns the ClickHouse data dir and
no other process may open it. Commands that need ClickHouse while the
product runs (`keys`, `backfill`, ...) therefore go through the running
process's admin API, found through `<data dir>/instance.json` (mode 0600:
it holds the admin token, regenerated at every start).

With `CLICKHOUSE_URL` set, commands talk to the server directly instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

INSTANCE_FILE = "instance.json"
# A streamed admin answer (NDJSON) may be quiet this long between lines.
STREAM_READ_TIMEOUT_S = 600.0
ADMIN_TOKEN_HEADER = "X-Admin-Token"


@dataclass(frozen=True)
class Instance:
    pid: int
    gateway_url: str
    kafka_bootstrap_servers: str
    redis_url: str
    admin_token: str

    @property
    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def new_admin_token() -> str:
    return secrets.token_urlsafe(32)


def write_instance(data_dir: Path, instance: Instance) -> Path:
    path = data_dir / INSTANCE_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(asdict(instance)))
    os.replace(tmp, path)
    return path


def remove_instance(data_dir: Path) -> None:
    (data_dir / INSTANCE_FILE).unlink(missing_ok=True)


def running_instance(data_dir: Path) -> Instance | None:
    """The live `up` of this data dir, or None (a stale file from a crash is ignored)."""
    path = data_dir / INSTANCE_FILE
    try:
        instance = Instance(**orjson.loads(path.read_bytes()))
    except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
        return None
    return instance if instance.alive else None


async def call_admin(instance: Instance, method: str, path: str, payload: object | None = None) -> object:
    """Call the admin API of a running instance; returns the decoded JSON answer."""
    import aiohttp

    from lms_events.errors import LmsEventsError

    url = f"{instance.gateway_url}/admin/{path.lstrip('/')}"
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, url, json=payload, headers={ADMIN_TOKEN_HEADER: instance.admin_token}
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise LmsEventsError(f"admin API {method} {path}: HTTP {response.status}: {body.decode()[:500]}")
            return orjson.loads(body) if body else None


async def stream_admin(instance: Instance, path: str, payload: object | None = None) -> AsyncIterator[object]:
    """POST to a streaming admin route; yields each NDJSON line of the answer, decoded."""
    import aiohttp

    from lms_events.errors import LmsEventsError

    url = f"{instance.gateway_url}/admin/{path.lstrip('/')}"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=STREAM_READ_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(url, json=payload, headers={ADMIN_TOKEN_HEADER: instance.admin_token}) as response:
            if response.status >= 400:
                body = await response.read()
                raise LmsEventsError(f"admin API POST {path}: HTTP {response.status}: {body.decode()[:500]}")
            async for line in response.content:
                if line.strip():
                    yield orjson.loads(line)
