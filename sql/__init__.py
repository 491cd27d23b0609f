"""Numbered ClickHouse migrations, applied in order by `lms_events.migrations`.

The same SQL runs on chDB (embedded) and on a ClickHouse server.
"""
