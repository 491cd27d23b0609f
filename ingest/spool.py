"""The gateway's spool: with the embedded broker, the durable copy of what a 200 promised.

The embedded Tansu keeps messages in memory only, so a broker or `up`
crash would lose events already answered `accepted`. Under it, every
publish is also appended to this log in the data dir and fsynced before
the gateway answers: Kafka gets the messages at the same time, so the
disk costs the request only the wait for the fsync it shares with every
request of the same flush (group commit: one flusher thread writes
whatever queued up while the previous write ran, in one O_DSYNC write).
Records are encoded on the event loop (a few microseconds, with ISA-L's
CRC, which keeps the GIL) so that the flusher needs the GIL once a flush
only: every time a thread takes it back from the busy event loop it may
wait the interpreter's switch interval (5 ms), which clients would see as
latency. Measured on 64 KiB beside a busy thread: zlib.crc32, which lets
go of the GIL, 318 us a call; binascii.crc32 12 us (6,400 loop-thread
instructions an event in count_gateway_instructions.py); isal's 4 us.

Segments: files `<id>.spool` of records, a new one every
MAX_SEGMENT_BYTES or MAX_SEGMENT_AGE_S. A sealed segment is deleted once
the stream app has committed every message of it (its offsets per
partition, from the delivery reports), i.e. once ClickHouse has them;
only the oldest go, so a void record never outlives what it voids. At
start `up` publishes what the segments left by the previous run hold
(`recovered`) before it serves: the sinks make what ClickHouse already
has a no-op.

Records and their encoding: ingest/spool_records.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.publish import KafkaMessage, Offsets
from ingest.spool_records import MESSAGES, VOID, encode, messages_of, records, voided_segment
from lms_events.errors import BrokerUnavailable

log = structlog.get_logger(__name__)

SUFFIX = ".spool"
# Small segments keep the spool a few seconds of traffic: each is deleted
# as soon as the sink has committed it, and replayed whole otherwise.
MAX_SEGMENT_BYTES = 32 * 1024 * 1024
MAX_SEGMENT_AGE_S = 1.0

IOV_MAX = os.sysconf("SC_IOV_MAX")


@dataclass(frozen=True, slots=True)
class Ticket:
    """Where a durable record is: what `published` and `abandon` refer to."""

    segment: int
    sequence: int
    # The broker incarnation the record was published to (see `rebase`).
    generation: int = 0


@dataclass(slots=True)
class _Segment:
    id: int
    sealed: bool = False
    # Records fsynced whose publish has not ended: the segment must stay.
    in_flight: int = 0
    # Its records are to be published again (previous run, or the broker restarted empty).
    replay_pending: bool = False
    # The highest offset per partition its messages got: deletable once committed beyond.
    offsets: Offsets = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Entry:
    sequence: int
    # Frame header and the body's parts: written as they are (writev), never copied into one.
    record: tuple[bytes, ...]
    durable: asyncio.Future[Ticket] | None = None
    generation: int = 0
    # Not a record: the flusher seals the current segment once it wrote what came before.
    seal: bool = False


@dataclass(frozen=True, slots=True)
class Recovered:
    """The messages a previous run made durable in one segment, voided records left out."""

    segment: int
    messages: list[KafkaMessage]


def _fsync_directory(directory: Path) -> None:
    """A new or deleted segment must be durable as a directory entry too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Call from the event loop; the file work happens on the flusher thread."""

    def __init__(self, directory: Path, previous: list[int], loop: asyncio.AbstractEventLoop) -> None:
        self.directory = directory
        self._loop = loop
        self._previous = previous
        # Loop thread only. The previous run's segments stay at least until `replayed`.
        self._segments: dict[int, _Segment] = {i: _Segment(i, sealed=True, replay_pending=True) for i in previous}
        self._sequence = 0
        self._generation = 0
        # Shared with the flusher thread, under the condition's lock.
        self._condition = threading.Condition()
        self._queue: list[_Entry] = []
        self._closing = False
        # Flusher thread only.
        self._next_id = max(previous, default=0) + 1
        self._fd: int | None = None
        self._segment_id = 0
        self._segment_bytes = 0
        self._segment_opened = 0.0
        self._flusher = threading.Thread(target=self._flush_forever, name="spool-flusher", daemon=True)
        self._flusher.start()

    @classmethod
    def open(cls, directory: Path) -> Spool:
        """The spool in `directory`; segments found there are the previous run's, to replay."""
        directory.mkdir(parents=True, exist_ok=True)
        previous = sorted(int(path.stem) for path in directory.glob(f"*{SUFFIX}") if path.stem.isdigit())
        return cls(directory, previous, asyncio.get_running_loop())

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:020d}{SUFFIX}"

    # --- the previous run's segments ----------------------------------------

    def recovered(self, segments: list[int] | None = None) -> list[Recovered]:
        """What `segments` (by default the previous run's) hold, oldest first; call
        `replayed` for each once published. Blocking: call off the event loop."""
        segments = self._previous if segments is None else segments
        found: list[tuple[int, int, list[KafkaMessage]]] = []
        voided: set[Ticket] = set()
        for segment in segments:
            for sequence, kind, body in records(self._path(segment).read_bytes(), self._path(segment)):
                if kind == MESSAGES:
                    found.append((segment, sequence, messages_of(body)))
                elif kind == VOID:
                    voided.add(Ticket(voided_segment(body), sequence))
        by_segment: dict[int, list[KafkaMessage]] = {}
        for segment, sequence, messages in found:
            if Ticket(segment, sequence) not in voided:
                by_segment.setdefault(segment, []).extend(messages)
        return [Recovered(segment, by_segment.get(segment, [])) for segment in segments]

    def replayed(self, segment: int, offsets: Offsets) -> None:
        """The recovered messages of `segment` are in Kafka again, at `offsets`."""
        self._segments[segment].offsets = dict(offsets)
        self._segments[segment].replay_pending = False

    async def rebase(self) -> list[int]:
        """The broker restarted empty: every segment must be published again (`recovered`,
        then `replayed` each). Seals the current one, so that what comes next goes to new ones."""
        sealing: asyncio.Future[Ticket] = self._loop.create_future()
        self._enqueue(_Entry(0, (), sealing, seal=True))
        await sealing
        # Offsets from the dead broker, reported late, must not count (see `published`).
        self._generation += 1
        for segment in self._segments.values():
            segment.offsets = {}
            segment.replay_pending = True
        return sorted(self._segments)

    # --- the hot path (loop thread) -----------------------------------------

    def append(self, messages: Sequence[KafkaMessage]) -> asyncio.Future[Ticket]:
        """A future that resolves once `messages` are fsynced (BrokerUnavailable if the disk fails)."""
        durable: asyncio.Future[Ticket] = self._loop.create_future()
        sequence = self._next_sequence()
        self._enqueue(_Entry(sequence, encode(sequence, messages), durable, self._generation))
        return durable

    def published(self, ticket: Ticket, offsets: Offsets) -> None:
        """Kafka acknowledged the record's messages at `offsets`."""
        segment = self._segments[ticket.segment]
        segment.in_flight -= 1
        if ticket.generation != self._generation:
            return  # offsets of a broker since restarted: the rebase published the record again
        for partition, offset in offsets.items():
            segment.offsets[partition] = max(segment.offsets.get(partition, -1), offset)

    def abandon(self, durable: asyncio.Future[Ticket]) -> None:
        """The publish failed (the client gets 503): a replay must leave the record out."""
        if not durable.done():
            durable.cancel()  # `_settle` voids it once written
        elif not durable.cancelled() and durable.exception() is None:
            ticket = durable.result()
            self._segments[ticket.segment].in_flight -= 1
            self._void(ticket)

    def _void(self, ticket: Ticket) -> None:
        # Not waited for: lost in a crash, it only lets a replay store events whose
        # client was told 503, which a retry would have stored anyway (the sinks
        # keep one copy of an event).
        self._enqueue(_Entry(ticket.sequence, encode(ticket.sequence, voided_segment=ticket.segment)))

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _enqueue(self, entry: _Entry) -> None:
        with self._condition:
            self._queue.append(entry)
            self._condition.notify()

    def _settle(self, segment_id: int, sealed: list[int], group: list[_Entry], error: OSError | None) -> None:
        """Loop thread, once per flush: the group is durable (or failed)."""
        for sealed_id in sealed:
            self._segments.setdefault(sealed_id, _Segment(sealed_id)).sealed = True
        if error is not None:
            for entry in group:
                if entry.durable is not None and not entry.durable.done():
                    entry.durable.set_exception(BrokerUnavailable(f"the spool could not be written: {error}"))
            return
        for entry in group:
            if entry.seal:  # wrote nothing: its segment may be none
                assert entry.durable is not None
                entry.durable.set_result(Ticket(segment_id, entry.sequence))
                continue
            segment = self._segments.setdefault(segment_id, _Segment(segment_id))
            if entry.durable is None:
                continue
            if entry.durable.cancelled():
                self._void(Ticket(segment_id, entry.sequence))
            else:
                segment.in_flight += 1
                entry.durable.set_result(Ticket(segment_id, entry.sequence, entry.generation))

    # --- the flusher thread -------------------------------------------------

    def _flush_forever(self) -> None:
        while True:
            with self._condition:
                if not self._queue and not self._closing:
                    self._condition.wait(MAX_SEGMENT_AGE_S)
                group, self._queue = self._queue, []
                closing = self._closing
            sealed = self._rotate_if_due(closing=closing and not group)
            if group:
                self._write(group, sealed)
            elif sealed:
                self._loop.call_soon_threadsafe(self._settle, sealed[0], sealed, [], None)
            if closing and not group:
                return

    def _rotate_if_due(self, *, closing: bool) -> list[int]:
        """Seal the current segment when it is full, old or the spool closes; the next write opens a new one."""
        if self._fd is None:
            return []
        full = self._segment_bytes >= MAX_SEGMENT_BYTES
        old = time.monotonic() - self._segment_opened >= MAX_SEGMENT_AGE_S
        if not (full or old or closing):
            return []
        os.close(self._fd)
        self._fd = None
        return [self._segment_id]

    def _write(self, group: list[_Entry], sealed: list[int]) -> None:
        buffers = [buffer for entry in group for buffer in entry.record]
        size = sum(len(buffer) for buffer in buffers)
        if len(buffers) > IOV_MAX:
            buffers = [b"".join(buffers)]
        error: OSError | None = None
        try:
            if self._fd is None and size:
                self._segment_id, self._next_id = self._next_id, self._next_id + 1
                # O_DSYNC: one write call is the write and its fsync (one GIL hand-over, not two).
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_DSYNC
                self._fd = os.open(self._path(self._segment_id), flags, 0o600)
                self._segment_bytes, self._segment_opened = 0, time.monotonic()
                _fsync_directory(self.directory)
            written = os.writev(self._fd, buffers) if size else 0
            if written < size:  # a regular file takes it all at once, unless the disk is full
                assert self._fd is not None
                rest = b"".join(buffers)
                while written < size:
                    written += os.write(self._fd, rest[written:])
            self._segment_bytes += size
            if any(entry.seal for entry in group) and self._fd is not None:
                os.close(self._fd)
                self._fd = None
                sealed = [*sealed, self._segment_id]
        except OSError as exc:
            # After a failed write the file's state is unknown: seal it
            # and start the next group on a fresh segment.
            error = exc
            log.error("spool_write_failed", error=str(exc), segment=self._segment_id)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                sealed = [*sealed, self._segment_id]
        self._loop.call_soon_threadsafe(self._settle, self._segment_id, sealed, group, error)

    # --- truncation and stop (loop thread) ----------------------------------

    def topics(self) -> set[str]:
        """The topics any segment still holds messages of (a topic generation stays until none does)."""
        return {topic for s in self._segments.values() for topic, _ in s.offsets}

    def published_offsets(self) -> Offsets:
        """The highest offset each partition got from what the spool holds (sealed or not)."""
        highest: Offsets = {}
        for segment in self._segments.values():
            for partition, offset in segment.offsets.items():
                highest[partition] = max(offset, highest.get(partition, -1))
        return highest

    def truncate(self, committed: Mapping[tuple[str, int], int]) -> list[Path]:
        """Forget the oldest sealed segments whose every message the stream app committed;
        returns their files, for the caller to delete (`delete`)."""
        gone: list[Path] = []
        for segment in sorted(self._segments.values(), key=lambda s: s.id):
            done = segment.sealed and not segment.in_flight and not segment.replay_pending and all(
                committed.get(partition, 0) > offset for partition, offset in segment.offsets.items()
            )
            if not done:
                break
            del self._segments[segment.id]
            gone.append(self._path(segment.id))
        return gone

    def delete(self, paths: list[Path]) -> None:
        """Blocking: call off the event loop."""
        for path in paths:
            path.unlink(missing_ok=True)
        if paths:
            _fsync_directory(self.directory)

    async def close(self) -> None:
        """Write what is queued, seal the last segment; the files stay for `truncate` or the next run."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        await asyncio.to_thread(self._flusher.join)
        # The flusher's last `_settle` ran before this line (callbacks run in the order
        # they were scheduled) and may have voided records: one more flush for those.
        if self._queue:
            await asyncio.to_thread(self._flush_forever)

    @property
    def segments(self) -> int:
        return len(self._segments)
