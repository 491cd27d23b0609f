"""The HTTP edge: collect -> validate -> publish to Kafka -> answer per event."""
