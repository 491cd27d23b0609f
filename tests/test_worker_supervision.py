"""`up`'s stream worker supervision (lms_events/supervision.py): a worker that crashed is
replaced; a replacement that fails to start is tried again with a growing pause, and one that
someone else replaced meanwhile (a broker restart holding the lock) is not replaced twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from lms_events import supervision
from lms_events.errors import EmbeddedStartError

ACTIONS = "lms_events_supervision_actions_total"
SAMPLE_LABELS = {"component": "stream_worker", "reason": "RuntimeError"}


class Worker:
    """A stream worker as the supervisor sees it: crashed or not, restartable."""

    def __init__(self, failing_starts: int) -> None:
        self.reason: BaseException | None = None
        self.failing_starts = failing_starts
        self.attempts = 0
        self.restarted = asyncio.Event()
        self.looked_at = 0

    def crashed(self) -> BaseException | None:
        self.looked_at += 1
        return self.reason

    async def restart(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failing_starts:
            raise EmbeddedStartError("did not join its group")
        self.reason = None
        self.restarted.set()


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def fast_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervision, "WATCH_INTERVAL_S", 0.01)
    monkeypatch.setattr(supervision, "MAX_RETRY_INTERVAL_S", 0.05)


async def test_a_failed_restart_is_tried_again_until_the_worker_runs() -> None:
    worker = Worker(failing_starts=3)
    watch = asyncio.create_task(supervision.supervise_stream_worker(worker.crashed, worker.restart, asyncio.Lock()))
    try:
        replaced = REGISTRY.get_sample_value(ACTIONS, SAMPLE_LABELS) or 0.0
        worker.reason = RuntimeError("fetcher crashed")
        await asyncio.wait_for(worker.restarted.wait(), 5)
        assert worker.attempts == 4 and worker.crashed() is None
        await _until(lambda: REGISTRY.get_sample_value(ACTIONS, SAMPLE_LABELS) == replaced + 1)
    finally:
        watch.cancel()


async def test_a_worker_replaced_while_the_lock_was_held_is_not_replaced_again() -> None:
    worker = Worker(failing_starts=0)
    lock = asyncio.Lock()
    watch = asyncio.create_task(supervision.supervise_stream_worker(worker.crashed, worker.restart, lock))
    try:
        async with lock:  # a broker restart replaces the worker while holding the lock
            worker.reason = RuntimeError("broker died")
            seen = worker.looked_at
            await _until(lambda: worker.looked_at > seen)  # it saw the crash; now it waits for the lock
            worker.reason = None
        seen = worker.looked_at
        await _until(lambda: worker.looked_at > seen + 2)  # looked again under the lock, and after
        assert worker.attempts == 0
    finally:
        watch.cancel()
