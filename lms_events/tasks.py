"""Background tasks that live as long as something else (a context, a service)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and return once it has ended: its cleanup runs before whatever the
    caller closes next."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
