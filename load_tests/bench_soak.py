"""Soak: `lms-events up` under steady load for a long while; does its memory stay flat?

    python load_tests/bench_soak.py                    # 10 minutes at 1,000 events/s
    python load_tests/bench_soak.py --duration 120     # a trial run

Starts `up` as a user would (nothing configured: embedded Tansu, valkey,
chDB) in a temporary data dir, posts batches of fresh events to it at a
fixed rate, and every --every seconds prints the resident memory (RSS) of
each process (`up` itself, the broker, valkey) and the data dir's spool.
At the end: each process's growth from the first sample after the
warm-up to the last one (target: under 10 %), the peak, and what a
posted event weighs as JSON. The load is open-loop: a request starts on
schedule whether or not earlier ones have been answered (at most
--in-flight at once); what the gateway refuses is counted, not retried.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lms_events import embedded  # noqa: E402
from lms_events.instance import running_instance  # noqa: E402

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 300.0
PAGE = os.sysconf("SC_PAGE_SIZE")


# What the log says when consuming went wrong (a stall, a slow rebalance, a replaced worker).
TROUBLE_LINES = (
    "stream_worker_crashed",
    "stream_worker_left_behind",
    "stream_worker_restart_failed",
    "generation_subscribe_slow",
    "generation_unsubscribe_slow",
    "generation_rotation_failed",
    "Stream has not started processing",
    "Stream stopped processing",
)
# A school: this many learners, each in one session for the run.
USERS = 2_000


def _event() -> dict[str, object]:
    user = random.randrange(USERS)
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "game_stage_complete",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "user_id": f"usr_{user:06d}",
        "session_id": f"sess_{user:06d}",
        "organization_id": "demo-org",
        "device_info": {"user_agent": "Mozilla/5.0", "platform": "desktop", "browser": "chrome", "version": "120.0"},
        "context": {"page_url": "/student/assignment-play", "assignment_id": "asg_789"},
        "properties": {"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 87, "max_score": 100, "passed": True},
        "privacy_level": "standard",
    }


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _name(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"broker" in cmdline:
        return "broker"
    if b"valkey" in cmdline[0] or Path(f"/proc/{pid}/comm").read_text().startswith("valkey"):
        return "valkey"
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.glob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


@dataclass
class Load:
    url: str
    key: str
    # Every this many events one breaks a rule (0: none): bad rows are traffic too.
    bad_every: int = 0
    answers: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    posted_bytes: int = 0
    posted_events: int = 0

    async def post(self, session: aiohttp.ClientSession, events: list[dict[str, object]]) -> None:
        body = json.dumps({"batch": events}).encode()
        self.posted_bytes += len(body)
        self.posted_events += len(events)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                self.answers[response.status] = self.answers.get(response.status, 0) + 1
                if response.status == 200:
                    totals = (await response.json())["totals"]
                    self.accepted += totals["accepted"]
                    self.rejected += totals["rejected"]
        except aiohttp.ClientError:
            self.answers[0] = self.answers.get(0, 0) + 1

    async def run(self, rate: float, batch: int, duration_s: float, in_flight: int) -> None:
        interval = batch / rate
        slots = asyncio.Semaphore(in_flight)
        pending: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            start = time.monotonic()
            sent = 0
            while time.monotonic() - start < duration_s:
                await slots.acquire()
                events = [_event() for _ in range(batch)]
                for position in range(batch) if self.bad_every else ():
                    if (sent * batch + position) % self.bad_every == 0:
                        events[position]["timestamp"] = "yesterday"
                task = asyncio.create_task(self.post(session, events))
                task.add_done_callback(lambda t: (slots.release(), pending.discard(t)))
                pending.add(task)
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
            await asyncio.gather(*pending)


async def _sample_forever(up_pid: int, data_dir: Path, load: Load, every_s: float, samples: list[dict[str, float]]) -> None:
    start = time.monotonic()
    while True:
        sample = {"t": time.monotonic() - start, "up": _rss_mb(up_pid)}
        for pid in _children(up_pid):
            sample[_name(pid)] = _rss_mb(pid)
        sample["spool_mb"] = _dir_mb(data_dir / "spool")
        samples.append(sample)
        rss = "  ".join(f"{k} {v:7.1f} MB" for k, v in sample.items() if k not in ("t", "spool_mb"))
        print(
            f"t={sample['t']:6.0f}s  accepted {load.accepted:>9,}  {rss}  spool {sample['spool_mb']:.1f} MB",
            flush=True,
        )
        await asyncio.sleep(every_s)


def _start_up(data_dir: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = embedded.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "REDIS_URL")}
    env.update(
        LMS_EVENTS_DATA_DIR=str(data_dir),
        LMS_EVENTS_GATEWAY_PORT=str(port),
        LMS_EVENTS_EMBEDDED_KAFKA_PORT="0",
        LMS_EVENTS_LOG_FORMAT="json",
        **env_extra,
    )
    # Outside the temporary data dir, which goes at the end: the log stays for a look afterwards.
    log_path = Path(tempfile.gettempdir()) / f"lms-soak-up-{os.getpid()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "lms_events.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}", log_path


async def _wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("lms-events up did not start:\n" + log_path.read_text()[-3000:])
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200 and "lms-events is up" in log_path.read_text():
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def _topic_sizes(data_dir: Path) -> None:
    """Messages per topic on the broker now (what its memory holds; end offsets, which Tansu
    reports as one past the first record of a partition's last batch: a lower bound)."""
    instance = running_instance(data_dir)
    if instance is None:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=instance.kafka_bootstrap_servers)
    await consumer.start()
    try:
        sizes = {}
        for topic in sorted(await consumer.topics()):
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            sizes[topic] = sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
        print("messages on the broker now: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()))
    finally:
        await consumer.stop()


async def _freshness(base: str) -> None:
    """From up's /metrics: how soon a stored batch was in ClickHouse after the gateway accepted
    its oldest event (the histogram's buckets, cumulative), rebalances at rotations included."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("lms_events_sink_accepted_to_stored_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets[bound] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0)
    if total:
        shares = ", ".join(f"<= {b} s {buckets[b] / total:.1%}" for b in ("1.0", "2.0", "5.0", "10.0", "30.0") if b in buckets)
        print(f"accepted -> stored, {total:,.0f} batches: {shares}")


def _report(samples: list[dict[str, float]], warmup_s: float, load: Load, log_path: Path) -> None:
    after = [s for s in samples if s["t"] >= warmup_s]
    print(f"\nanswers {load.answers}, accepted {load.accepted:,} events, rejected {load.rejected:,}")
    if load.posted_events:
        print(f"posted JSON: {load.posted_bytes / load.posted_events:.0f} bytes an event (batch body / events)")
    log = log_path.read_text()
    print(f"topic generations opened {log.count('generation_opened')}, deleted {log.count('generation_deleted')}")
    trouble = {line: log.count(line) for line in TROUBLE_LINES if line in log}
    print("trouble in up's log: " + (", ".join(f"{line} x{n}" for line, n in trouble.items()) or "none"))
    if len(after) < 2:
        print(f"no growth figure: fewer than 2 samples after the {warmup_s:.0f} s warm-up")
        return
    first, last = after[0], after[-1]
    print(f"memory from t={first['t']:.0f}s (after warm-up) to t={last['t']:.0f}s; target: growth under 10 %")
    for name in (k for k in first if k not in ("t", "spool_mb")):
        peak = max(s.get(name, 0.0) for s in after)
        growth = (last.get(name, 0.0) - first[name]) / first[name] * 100 if first[name] else 0.0
        print(f"  {name:8s} {first[name]:7.1f} -> {last.get(name, 0.0):7.1f} MB  growth {growth:+5.1f} %  peak {peak:7.1f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second (default 1000)")
    parser.add_argument("--batch", type=int, default=50, help="events per request (default 50)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between memory samples (default 30)")
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds before growth is counted (default 120)")
    parser.add_argument("--in-flight", type=int, default=32, help="requests at once at most (default 32)")
    parser.add_argument("--rotation", type=float, help="LMS_EVENTS_TOPIC_ROTATION_S for `up` (default: its own)")
    parser.add_argument("--bad-every", type=int, default=0, help="one event in this many breaks a rule (default 0: none)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lms-soak-") as work:
        data_dir = Path(work) / "data"
        extra = {"LMS_EVENTS_TOPIC_ROTATION_S": str(args.rotation)} if args.rotation else {}
        process, base, log_path = _start_up(data_dir, extra)
        samples: list[dict[str, float]] = []
        load = Load(f"{base}/v1/batch", "", bad_every=args.bad_every)
        try:
            await _wait_ready(process, base, log_path)
            load.key = (data_dir / "demo_write_key").read_text().strip()
            print(f"up's log: {log_path}", flush=True)
            print(f"up pid {process.pid}, {args.rate:.0f} events/s in batches of {args.batch} for {args.duration:.0f} s", flush=True)
            sampler = asyncio.create_task(_sample_forever(process.pid, data_dir, load, args.every, samples))
            await load.run(args.rate, args.batch, args.duration, args.in_flight)
            sampler.cancel()
            await _topic_sizes(data_dir)
            await _freshness(base)
            _report(samples, args.warmup, load, log_path)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                rc = process.wait(STOP_TIMEOUT_S)
                print(f"up stopped (rc {rc})")
            except subprocess.TimeoutExpired:
                process.kill()
                print("up did not stop within its bound: killed")


if __name__ == "__main__":
    asyncio.run(main())
