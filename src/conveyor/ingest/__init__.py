"""Streaming ingest: Kafka records into bronze, silver and quarantine Delta tables."""
