"""Streaming ingest: Kafka records into bronze, silver and quarantine Delta tables.

`stream` runs a stream's query; each micro-batch goes through the batch core (`core`), which
hands it to the landing of the stream's kind (`landings.append`, `landings.changes`). In front
of the append landing: one decode-and-check stage (`decode`, `quality`); beside it: `dedup`,
`quarantine`, `silver` (the tables' shapes) and `bronze`.
"""
