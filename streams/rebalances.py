"""Faust's aiokafka consumer thread, made to survive rebalances.

Under `up` the stream app rebalances at every topic generation change
(lms_events/generations.py), twice a rotation, so two races in Faust that
a steady cluster rarely hits became stalls:

- Faust asks aiokafka for the high watermark of each partition it fetched
  records of, and aiokafka asserts the partition is still assigned: a
  rebalance between the fetch and that question crashed Faust's fetcher
  (seen once in a soak). The watermark only feeds Faust's monitor: a
  revoked partition's is now unknown (0), and its records come again from
  the committed offset to whoever is assigned it.
- Faust's commit timer can fire while aiokafka holds no assignment: Faust
  asks aiokafka to commit nothing, aiokafka raises IllegalStateError('No
  partitions assigned'), and Faust crashes its consumer thread, so
  consuming stops for good (seen in a soak with a generation change every
  10 s). With no assignment nothing can be committed: the commit is
  skipped, the acked offsets stay, and the first commit after the
  assignment carries them (partitions that went elsewhere are read again
  from their last commit: the sinks make that a no-op).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_installed = False


def tolerate_rebalances() -> None:
    """Patch Faust's consumer thread, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    highwater_of_assigned = AIOKafkaConsumerThread.highwater
    commit_assigned = AIOKafkaConsumerThread._commit

    def highwater(self: AIOKafkaConsumerThread, tp: Any) -> int:
        return highwater_of_assigned(self, tp) if tp in self.assignment() else 0

    async def _commit(self: AIOKafkaConsumerThread, offsets: Mapping[Any, int]) -> bool:
        return await commit_assigned(self, offsets) if self.assignment() else False

    AIOKafkaConsumerThread.highwater = highwater  # type: ignore[method-assign]
    AIOKafkaConsumerThread._commit = _commit  # type: ignore[method-assign]
