"""How the spool (ingest/spool.py) writes a record and reads it back.

Record: u32 body length, u32 CRC-32 of the body, then the body: u64
sequence number, u8 kind, and for MESSAGES each message as u16 topic
length, u32 key length, u32 value length, topic, key, value; for VOID the
u64 segment id of a record whose publish failed (the client got 503, so a
replay must leave it out). A crash while writing leaves a torn last record,
never acknowledged: reading stops at the first short or corrupt record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import structlog
from isal.isal_zlib import crc32

from ingest.publish import KafkaMessage

log = structlog.get_logger(__name__)

_FRAME = struct.Struct("<II")
_HEAD = struct.Struct("<QB")
_MESSAGE = struct.Struct("<HII")
_VOIDED = struct.Struct("<Q")
MESSAGES = 1
VOID = 2


def encode(sequence: int, messages: Sequence[KafkaMessage] = (), voided_segment: int | None = None) -> tuple[bytes, ...]:
    """A record as the buffers to write: frame header, then the body's parts (no copy of the values)."""
    parts = [_HEAD.pack(sequence, MESSAGES if voided_segment is None else VOID)]
    if voided_segment is not None:
        parts.append(_VOIDED.pack(voided_segment))
    for message in messages:
        topic = message.topic.encode()
        parts += (_MESSAGE.pack(len(topic), len(message.key), len(message.value)), topic, message.key, message.value)
    crc = 0
    for part in parts:
        crc = crc32(part, crc)
    return (_FRAME.pack(sum(len(part) for part in parts), crc), *parts)


def records(data: bytes, path: Path) -> Iterator[tuple[int, int, memoryview]]:
    """(sequence, kind, rest of the body) of each whole record of a segment."""
    view = memoryview(data)
    position = 0
    while position + _FRAME.size <= len(view):
        length, crc = _FRAME.unpack_from(view, position)
        body = view[position + _FRAME.size : position + _FRAME.size + length]
        if len(body) < max(length, _HEAD.size) or crc32(body) != crc:
            break
        sequence, kind = _HEAD.unpack_from(body)
        yield sequence, kind, body[_HEAD.size :]
        position += _FRAME.size + length
    if position < len(view):
        log.warning("spool_torn_tail", segment=path.name, bytes=len(view) - position)


def messages_of(body: memoryview) -> list[KafkaMessage]:
    """The messages of a MESSAGES record's body."""
    messages = []
    position = 0
    while position < len(body):
        topic_length, key_length, value_length = _MESSAGE.unpack_from(body, position)
        position += _MESSAGE.size
        topic = bytes(body[position : position + topic_length]).decode()
        position += topic_length
        key = bytes(body[position : position + key_length])
        position += key_length
        messages.append(KafkaMessage(topic, key, bytes(body[position : position + value_length])))
        position += value_length
    return messages


def voided_segment(body: memoryview) -> int:
    """The segment of the record a VOID record's body voids."""
    return int(_VOIDED.unpack_from(body)[0])
