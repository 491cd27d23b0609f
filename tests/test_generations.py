"""Topic generations' bookkeeping (lms_events/generations.py) and the log's repeat limiter."""

from __future__ import annotations

import logging

from lms_events.generations import ANALYTICS_EVENTS_PATTERN, TopicGenerations, generation_topic
from lms_events.log_limits import RepeatLimiter
from lms_events.topics import ALL_TOPICS, PIPELINE_TOPICS, base_topic


def test_a_kafka_cluster_keeps_the_topic_names() -> None:
    generations = TopicGenerations(rotating=False)
    assert generations.topic_for("events.raw") == "events.raw"
    assert generations.pipeline_topics() == PIPELINE_TOPICS
    assert generations.all_topics() == ALL_TOPICS


def test_generations_move_the_busy_topics_and_only_those() -> None:
    generations = TopicGenerations(rotating=True)
    subscribed = generations.subscriptions["events.raw"]  # the list the stream app's topic shares
    assert generations.topic_for("events.raw") == "events.raw.g1"
    assert generations.topic_for("analytics.events") == "analytics.events.g1"
    assert generations.topic_for("events.rejected") == "events.rejected.g1", "bad rows grow with traffic too"
    assert generations.topic_for("alerts") == "alerts.g1"
    assert generations.topic_for("user.events") == "user.events", "domain topics grow with the roster only"
    # The next generation's notification topics exist a rotation ahead.
    assert {"analytics.events.g1", "analytics.events.g2", "alerts.g2", "events.raw.g1"} <= set(generations.all_topics())

    generations.open(2)
    assert subscribed == ["events.raw.g1", "events.raw.g2"]
    assert generations.topic_for("events.raw") == "events.raw.g1", "publishing moves only at the switch"
    generations.switch(2)
    assert generations.topic_for("intake.outcomes") == "intake.outcomes.g2"
    assert {"events.raw.g1", "events.raw.g2"} <= set(generations.pipeline_topics()), "the drain covers both"
    assert generations.live[1] is not None and generations.live[2] is None

    generations.unsubscribe(1)
    assert subscribed == ["events.raw.g2"]
    assert generations.topics_of(1) == (
        "events.raw.g1",
        "intake.outcomes.g1",
        "events.rejected.g1",
        "consent.records.g1",
        "analytics.events.g1",
        "alerts.g1",
    )

    generations.restart()  # the broker came back empty
    assert subscribed == ["events.raw.g3"] and generations.topic_for("events.raw") == "events.raw.g3"
    assert list(generations.live) == [3]


def test_the_follower_pattern_takes_the_base_topic_and_its_generations() -> None:
    import re

    pattern = re.compile(ANALYTICS_EVENTS_PATTERN)
    assert pattern.match("analytics.events") and pattern.match("analytics.events.g12")
    assert not pattern.match("analytics.events.rejected") and not pattern.match("alerts")


def _record(event: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("lms", level, __file__, 1, {"event": event}, None, None)


def test_repeated_errors_are_rate_limited_and_counted() -> None:
    limiter = RepeatLimiter(burst=3, window_s=60.0)
    passed = [limiter.filter(_record("broker_down")) for _ in range(10)]
    assert passed == [True] * 3 + [False] * 7
    assert limiter.filter(_record("other_error")), "each kind has its own budget"
    assert all(limiter.filter(_record("broker_down", logging.INFO)) for _ in range(10)), "info passes"

    limiter.window_s = 0.0  # the window is over: the next line says what was left out
    record = _record("broker_down")
    assert limiter.filter(record)
    assert record.msg["similar_lines_suppressed"] == 7


def test_the_lag_of_a_generation_counts_under_its_base_topic() -> None:
    """/health and /metrics report lag per base topic: a label per generation would never stop growing."""
    assert base_topic(generation_topic("events.raw", 12)) == "events.raw"
    assert base_topic("intake.outcomes") == "intake.outcomes"
    assert base_topic("user.events.gx") == "user.events.gx"
