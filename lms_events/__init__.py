"""lms-events: event ingestion gateway and stream processor for learning telemetry."""

__version__ = "0.1.0"
