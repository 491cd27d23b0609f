"""The gateway's pipelined Redis connection, against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ingest.redis_pipe import LuaScript, PipelinedRedis
from lms_events import embedded


@pytest.fixture
async def pipelined(redis_url: str):  # type: ignore[no-untyped-def]
    client = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    yield client
    await client.aclose()


async def test_concurrent_commands_each_get_their_own_reply(pipelined: PipelinedRedis) -> None:
    prefix = f"test:pipe:{uuid.uuid4().hex}:"
    await asyncio.gather(*(pipelined.execute("SET", f"{prefix}{i}", f"value-{i}", "EX", 60) for i in range(300)))
    replies = await asyncio.gather(*(pipelined.execute("GET", f"{prefix}{i}") for i in range(300)))
    assert replies == [f"value-{i}".encode() for i in range(300)]
    await pipelined.execute("DEL", *(f"{prefix}{i}" for i in range(300)))


async def test_an_error_reply_fails_its_command_only(pipelined: PipelinedRedis) -> None:
    key = f"test:pipe:{uuid.uuid4().hex}"
    await pipelined.execute("SET", key, "not a number", "EX", 60)
    failing, following = await asyncio.gather(
        pipelined.execute("INCR", key), pipelined.execute("GET", key), return_exceptions=True
    )
    assert isinstance(failing, ResponseError) and "not an integer" in str(failing)
    assert following == b"not a number"


async def test_scripts_are_loaded_again_after_redis_forgot_them(pipelined: PipelinedRedis) -> None:
    script = LuaScript(f"return ARGV[1] .. '-{uuid.uuid4().hex}'")
    assert (await pipelined.run(script, [], ["a"])).startswith(b"a-")
    await pipelined.execute("SCRIPT", "FLUSH")
    assert (await pipelined.run(script, [], ["b"])).startswith(b"b-")


async def test_a_dropped_connection_is_reopened_by_the_next_command(pipelined: PipelinedRedis) -> None:
    own_id = await pipelined.execute("CLIENT", "ID")
    with contextlib.suppress(RedisError):  # Redis may close before it answers
        await pipelined.execute("CLIENT", "KILL", "ID", own_id, "SKIPME", "no")
    # A command can still meet the closing connection and fail; the one after it reconnects.
    new_id = None
    for _ in range(2):
        with contextlib.suppress(RedisConnectionError):
            new_id = await pipelined.execute("CLIENT", "ID")
            break
    assert new_id is not None and new_id != own_id


async def test_a_refused_greeting_leaves_no_connection_open(redis_url: str) -> None:
    """The machine's Redis has no password, so AUTH is refused; the half-greeted connection is closed."""
    import redis.asyncio as aioredis

    from tests.support import eventually

    name = f"test-refused-{uuid.uuid4().hex[:8]}"
    with_password = redis_url.replace("redis://", "redis://:wrong@", 1)
    client = PipelinedRedis.from_url(with_password, timeout_s=2.0, name=name)
    observer = aioredis.from_url(redis_url)
    try:
        with pytest.raises(ResponseError):
            await client.execute("PING")

        async def named_connections() -> int:
            return sum(c["name"] == name for c in await observer.client_list())

        await eventually(named_connections, lambda count: count == 0)
    finally:
        await client.aclose()
        await observer.aclose()


async def test_unreachable_redis_is_a_redis_error() -> None:
    client = PipelinedRedis.from_url(f"redis://127.0.0.1:{embedded.free_port()}/0", timeout_s=1.0)
    with pytest.raises(RedisConnectionError):
        await client.execute("PING")


async def test_a_silent_server_times_out_and_is_hung_up_on() -> None:
    hung_up = asyncio.Event()

    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # returns when the client closes the connection
        hung_up.set()
        writer.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PipelinedRedis.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
    try:
        with pytest.raises(RedisTimeoutError):
            await client.execute("PING")
        await asyncio.wait_for(hung_up.wait(), 5.0)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
