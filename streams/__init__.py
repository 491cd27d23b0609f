"""Stream processing: Faust agents from Kafka topics into ClickHouse."""
