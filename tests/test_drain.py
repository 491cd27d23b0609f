"""The drain on stop must see every unconsumed message, whatever the broker reports as end offset."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from lms_events import embedded
from lms_events.drain import consumer_lag


async def test_lag_counts_records_inside_the_last_record_batch(tmp_path: Path) -> None:
    broker = await embedded.start_tansu(embedded.free_port(), tmp_path / "tansu.log")
    bootstrap = f"127.0.0.1:{broker.port}"
    try:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=100, enable_idempotence=False)
        await producer.start()
        # Ten records lingering into one record batch.
        sent = [await producer.send("drain.test", b"x", partition=0) for _ in range(10)]
        offsets = [(await f).offset for f in sent]
        await producer.stop()
        assert offsets == list(range(10))

        tp = TopicPartition("drain.test", 0)
        committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="drainers", enable_auto_commit=False)
        await committer.start()
        committer.assign([tp])
        try:
            await committer.commit({tp: OffsetAndMetadata(3, "")})
            assert await consumer_lag(bootstrap, "drainers", ("drain.test",)) == 7
            await committer.commit({tp: OffsetAndMetadata(10, "")})
            assert await consumer_lag(bootstrap, "drainers", ("drain.test",)) == 0
        finally:
            await committer.stop()
    finally:
        broker.stop()
