"""The gateway's Redis connection: one, pipelined, shared by every request.

Each batch asks Redis for the consent records of its users (MGET) and the
dedup claims of its events (one script call), and now and then for a
rate-limit lease (another script); /health pings it. redis-py's asyncio
client takes a pooled connection, a lock and its reader for each command;
a command here is one write, one future and a hiredis parse. Measured
with uvloop against the local Redis, one command after the other (process
CPU per command): EVALSHA 74-106 us with redis-py, 37-46 us here; MGET
71-79 us vs 39-51 us. In the gateway's loop thread that is 5,700 fewer
instructions an event (load_tests/count_gateway_instructions.py).

Redis answers a connection's commands in the order it received them, so
one connection serves every concurrent request: replies are matched to
the queue of waiting futures. A command that times out closes the
connection: a peer that stopped answering gets no more commands. Errors
are redis-py's exception classes (`RedisError` and below).
The connection is (re)opened on demand: after Redis restarts, the next
command reconnects.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _Replies(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.transport is None:
            raise RedisConnectionError("the connection to Redis was lost")
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self.transport.write(packed)
        return waiter

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self._waiting.popleft()
            if waiter.done():  # its caller timed out
                continue
            if isinstance(reply, ResponseError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError(f"Redis closed the connection: {exc!r}"))


class LuaScript:
    """A script sent by its SHA1; loaded on first use and again after a Redis restart."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class PipelinedRedis:
    def __init__(self, options: dict[str, Any], *, timeout_s: float, name: str = "") -> None:
        self._options = options
        self._timeout_s = timeout_s
        self._name = name  # shown by CLIENT LIST
        self._replies: _Replies | None = None
        self._connecting = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float, name: str = "") -> PipelinedRedis:
        return cls(parse_url(url), timeout_s=timeout_s, name=name)

    async def _connection(self) -> _Replies:
        if self._replies is not None and self._replies.transport is not None:
            return self._replies
        async with self._connecting:
            if self._replies is None or self._replies.transport is None:
                self._replies = await self._connect()
        return self._replies

    async def _connect(self) -> _Replies:
        options = self._options
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                if options.get("connection_class") is UnixDomainSocketConnection:
                    _, replies = await loop.create_unix_connection(_Replies, options["path"])
                else:
                    tls = ssl.create_default_context() if options.get("connection_class") is SSLConnection else None
                    _, replies = await loop.create_connection(
                        _Replies, options.get("host", "localhost"), options.get("port", 6379), ssl=tls
                    )
                greeting: list[asyncio.Future[Any]] = []
                if options.get("password"):
                    credentials = [options["username"]] if options.get("username") else []
                    greeting.append(replies.send(hiredis.pack_command(("AUTH", *credentials, options["password"]))))
                if options.get("db"):
                    greeting.append(replies.send(hiredis.pack_command(("SELECT", options["db"]))))
                if self._name:
                    greeting.append(replies.send(hiredis.pack_command(("CLIENT", "SETNAME", self._name))))
                try:
                    for reply in greeting:
                        await reply
                except BaseException:  # a refused AUTH or SELECT, or a timeout: no half-greeted connection stays
                    if replies.transport is not None:
                        replies.transport.abort()
                    raise
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot reach Redis: {exc!r}") from exc
        return replies

    async def execute(self, *args: str | bytes | int | float) -> Any:
        replies = await self._connection()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await replies.send(hiredis.pack_command(args))
        except TimeoutError as exc:
            # A peer that stopped answering may never answer: drop the connection (its
            # other waiters fail at once) so that the next command opens a fresh one.
            if replies.transport is not None:
                replies.transport.abort()
            raise RedisTimeoutError(f"Redis did not answer {args[0]!r} within {self._timeout_s}s") from exc

    def send_now(self, *args: str | bytes | int | float) -> asyncio.Future[Any] | None:
        """Send a command at once and return its reply's future, without a task or a wait: the
        caller awaits it after a later command's reply, by when (replies come in order) it is
        done. None when not connected (then `execute` it)."""
        replies = self._replies
        if replies is None or replies.transport is None:
            return None
        return replies.send(hiredis.pack_command(args))

    async def run(self, script: LuaScript, keys: list[str], args: list[str | bytes | int]) -> Any:
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.execute("SCRIPT", "LOAD", script.source)
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def aclose(self) -> None:
        if self._replies is not None and self._replies.transport is not None:
            self._replies.transport.close()
        self._replies = None
