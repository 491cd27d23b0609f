"""The gateway's spool on real files: what is appended survives, what failed is left out,
a torn tail is ignored, and segments go only once the stream app committed them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingest import spool as spool_module
from ingest.publish import KafkaMessage
from ingest.spool import Spool


def _messages(n: int, tag: str) -> list[KafkaMessage]:
    return [KafkaMessage("events.raw", f"{tag}-key-{i}".encode(), f'{{"n": {i}, "tag": "{tag}"}}'.encode()) for i in range(n)]


def _recovered_messages(spool: Spool) -> list[KafkaMessage]:
    return [message for segment in spool.recovered() for message in segment.messages]


async def test_appended_records_are_recovered_by_the_next_run_and_failed_ones_are_not(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path)
    kept, failed = _messages(3, "kept"), _messages(2, "failed")
    kept_ticket = await spool.append(kept)
    failed_durable = spool.append(failed)
    await failed_durable
    spool.published(kept_ticket, {("events.raw", 0): 7})
    spool.abandon(failed_durable)  # the publish failed: the client got 503
    cancelled = spool.append(_messages(1, "cancelled"))
    spool.abandon(cancelled)  # failed before the fsync ended
    await spool.close()

    again = Spool.open(tmp_path)
    assert _recovered_messages(again) == kept
    await again.close()


async def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path)
    first = _messages(2, "whole")
    await spool.append(first)
    await spool.append(_messages(2, "torn"))
    await spool.close()
    (segment,) = tmp_path.glob("*.spool")
    segment.write_bytes(segment.read_bytes()[:-5])  # a crash in the middle of the last write

    again = Spool.open(tmp_path)
    assert _recovered_messages(again) == first
    await again.close()


async def test_segments_are_deleted_oldest_first_once_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "MAX_SEGMENT_BYTES", 1)  # one record a segment
    spool = Spool.open(tmp_path)
    first = await spool.append(_messages(1, "a"))
    second = await spool.append(_messages(1, "b"))
    spool.published(first, {("events.raw", 0): 10})
    spool.published(second, {("events.raw", 1): 4})
    third = await spool.append(_messages(1, "c"))  # seals the second segment
    assert len({first.segment, second.segment, third.segment}) == 3

    # The second is committed, the first not yet: nothing may go (oldest first).
    assert spool.truncate({("events.raw", 1): 5}) == []
    assert spool.published_offsets() == {("events.raw", 0): 10, ("events.raw", 1): 4}  # what truncation reads
    gone = spool.truncate({("events.raw", 0): 11, ("events.raw", 1): 5})
    assert len(gone) == 2
    spool.delete(gone)
    # The third is still being published (in flight): it stays even once sealed.
    await spool.close()
    assert spool.truncate({("events.raw", 0): 100, ("events.raw", 1): 100}) == []
    assert [p.name for p in tmp_path.glob("*.spool")] == [f"{third.segment:020d}.spool"]


async def test_concurrent_appends_share_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = 0
    real = spool_module.os.writev

    def counting(fd: int, buffers: list[bytes]) -> int:
        nonlocal writes
        writes += 1
        return real(fd, buffers)

    monkeypatch.setattr(spool_module.os, "writev", counting)
    spool = Spool.open(tmp_path)
    await asyncio.gather(*(spool.append(_messages(1, str(i))) for i in range(200)))
    await spool.close()
    assert writes < 100
    again = Spool.open(tmp_path)
    assert len(_recovered_messages(again)) == 200
    await again.close()


async def test_after_a_broker_restart_everything_is_published_again_and_old_offsets_do_not_count(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path)
    stored = await spool.append(_messages(2, "stored"))
    spool.published(stored, {("events.raw", 0): 3})
    in_flight = await spool.append(_messages(1, "in-flight"))  # acked by the dead broker, reported late

    segments = await spool.rebase()
    assert [m.key for r in spool.recovered(segments) for m in r.messages] == [
        b"stored-key-0", b"stored-key-1", b"in-flight-key-0"
    ]
    spool.published(in_flight, {("events.raw", 0): 900})  # the dead broker's offset: ignored
    assert spool.truncate({("events.raw", 0): 10}) == [], "not deletable before it is published again"
    for segment in segments:
        spool.replayed(segment, {("events.raw", 0): 2})
    # New appends go to a new segment, published to the new broker.
    after = await spool.append(_messages(1, "after"))
    assert after.segment not in segments
    assert len(spool.truncate({("events.raw", 0): 3})) == len(segments)
    spool.published(after, {("events.raw", 0): 3})
    await spool.close()
