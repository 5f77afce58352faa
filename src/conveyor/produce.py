"""Realistic sample events and a producer that sends them to Kafka.

The generator is seeded and pure (same seed, same events); users browse in sessions that walk a
funnel (page views, clicks, add-to-cart, purchase). `send_events` does the I/O.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.catalog import StreamSpec
from conveyor.errors import ConveyorError
from conveyor.kafka.clients import client_options
from conveyor.settings import Settings

PAGES = (
    "/",
    "/search",
    "/category/shoes",
    "/category/books",
    "/product/42",
    "/product/7",
    "/product/1337",
    "/cart",
    "/checkout",
    "/help",
)
COUNTRIES = ("US", "DE", "FR", "GB", "IN", "BR", "JP", "NL")
DEVICES = ("desktop", "mobile", "tablet")
SERVICES = ("checkout", "search", "catalog", "auth")
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR")


class ProduceError(ConveyorError):
    """The broker refused or lost some of the records we sent."""


@dataclass(frozen=True)
class Event:
    """One record to send: key and value as Kafka will carry them."""

    key: bytes | None
    value: bytes | None


CLICK_GAP_MS = (50, 1_500)
"""Milliseconds between consecutive sample clicks (uniform): about 1.3 events/s on average."""
LOG_GAP_MS = (20, 1_000)


def ending_now(count: int, gap_ms: tuple[int, int]) -> datetime:
    """A start time from which `count` events `gap_ms` apart end at about now, so sample
    events look recent (and a later batch of samples is never behind the watermark)."""
    mean_ms = (gap_ms[0] + gap_ms[1]) / 2
    return datetime.now(UTC) - timedelta(milliseconds=count * mean_ms)


def click_events(
    count: int, *, seed: int = 7, start: datetime | None = None, users: int = 200
) -> Iterator[dict[str, Any]]:
    """count click events in time order from `start` (default: so that they end about now), as
    users walking sessions through a funnel. The same seed gives the same events; only the
    default start moves with the clock."""
    rng = random.Random(seed)
    clock = start or ending_now(count, CLICK_GAP_MS)
    made = 0
    while made < count:
        user = f"u{rng.randrange(users):05d}"
        session = str(uuid.UUID(int=rng.getrandbits(128)))
        device = rng.choice(DEVICES)
        country = rng.choice(COUNTRIES)
        referrer = rng.choice((None, "https://search.example/", "https://social.example/"))
        for event_type, url in _session_path(rng):
            if made >= count:
                return
            clock += timedelta(milliseconds=rng.randrange(*CLICK_GAP_MS))
            event: dict[str, Any] = {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "user_id": user,
                "session_id": session,
                "event_type": event_type,
                "url": url,
                "ts": clock.isoformat(timespec="milliseconds"),
                "referrer": referrer,
                "country": country,
                "device": device,
            }
            if event_type == "purchase":
                event["revenue"] = round(rng.uniform(5, 250), 2)
            made += 1
            yield event


def _session_path(rng: random.Random) -> list[tuple[str, str]]:
    steps = [("page_view", rng.choice(PAGES[:4]))]
    for _ in range(rng.randrange(0, 6)):
        steps.append((rng.choice(("page_view", "click")), rng.choice(PAGES)))
    if rng.random() < 0.3:
        steps.append(("add_to_cart", "/cart"))
        if rng.random() < 0.5:
            steps.append(("purchase", "/checkout"))
    return steps


def log_events(
    count: int, *, seed: int = 11, start: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """count application log lines in time order from `start` (default: ending about now)."""
    rng = random.Random(seed)
    clock = start or ending_now(count, LOG_GAP_MS)
    for _ in range(count):
        clock += timedelta(milliseconds=rng.randrange(*LOG_GAP_MS))
        level = rng.choice(LEVELS)
        yield {
            "ts": clock.isoformat(timespec="milliseconds"),
            "level": level,
            "service": rng.choice(SERVICES),
            "message": f"{level.lower()} handling request {rng.randrange(10**6)}",
            "trace_id": uuid.UUID(int=rng.getrandbits(128)).hex if rng.random() < 0.5 else None,
        }


def encode(event: dict[str, Any], key_field: str | None) -> Event:
    key = event.get(key_field) if key_field else None
    return Event(
        key=str(key).encode() if key is not None else None,
        value=json.dumps(event, separators=(",", ":")).encode(),
    )


def require_writable(settings: Settings, topic: str) -> None:
    """Raise unless the produce principal can reach Kafka and write topic (one clear line)."""
    from conveyor.kafka.topics import require_topic

    require_topic(settings, topic, "produce", needs=("DESCRIBE", "WRITE"))


def send_events(
    settings: Settings,
    topic: str,
    events: Iterable[Event],
    *,
    rate: float | None = None,
    on_sent: Callable[[int], None] | None = None,
    partition: int | None = None,
    checked: bool = False,
) -> int:
    """Send events to topic (acks=all, idempotent producer); rate in events/s, None = as fast
    as possible; `partition` sends every event there instead of where its key hashes.
    Returns the number sent; raises if any send failed, and before sending anything when
    Kafka is unreachable, the topic does not exist (Conveyor's brokers never create topics on
    first use) or the produce principal may not write it (`checked`: the caller just ran
    `require_writable`)."""
    from kafka import KafkaProducer

    if not checked:
        require_writable(settings, topic)
    producer = KafkaProducer(
        **client_options(settings, "produce"),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
    )
    failures: list[BaseException] = []
    sent = 0
    began = time.monotonic()
    try:
        for event in events:
            if rate:
                ahead = sent / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)  # pacing the producer to the requested rate, not a wait
            future = producer.send(topic, key=event.key, value=event.value, partition=partition)
            future.add_errback(failures.append)
            sent += 1
            if on_sent and sent % 500 == 0:
                on_sent(500)
        producer.flush()
        if failures:
            raise ProduceError(
                f"{len(failures)} of {sent} sends to topic '{topic}' failed: {failures[0]}"
            )
        if on_sent:
            on_sent(sent % 500)
    finally:
        producer.close()
    return sent


# ---------------------------------------------------------------- mixed samples for a stream

BAD_KINDS = (
    "malformed_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "not_allowed",
    "bad_timestamp",
    "timestamp_out_of_range",
    "empty_value",
    "tombstone",
    "invalid_utf8",
    "oversized",
)


def good_events(
    stream: str, count: int, *, seed: int, start: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Realistic valid events for the catalog's sample streams (clicks, app_logs)."""
    if stream.startswith("app_logs") or "log" in stream:
        return log_events(count, seed=seed, start=start)
    return click_events(count, seed=seed, start=start)


def bad_event(
    kind: str, template: dict[str, Any], *, event_time: str, required: str, max_bytes: int
) -> bytes | None:
    """One record of the given bad kind, built from a valid template event."""
    broken = dict(template)
    if kind == "malformed_json":
        return b'{"event_id": "x", "broken": '
    if kind == "not_an_object":
        return b'["a", "list", "not", "an", "object"]'
    if kind == "missing_field":
        broken.pop(required, None)
    elif kind == "wrong_type":
        broken[required] = 12345
    elif kind == "not_allowed":
        broken["event_type" if "event_type" in broken else "level"] = "no-such-value"
    elif kind == "bad_timestamp":
        broken[event_time] = "yesterday at noon"
    elif kind == "timestamp_out_of_range":
        broken[event_time] = "1970-01-02T00:00:00+00:00"
    elif kind == "empty_value":
        return b""
    elif kind == "tombstone":
        return None
    elif kind == "invalid_utf8":
        return b'{"event_id": "\xff\xfe"}'
    elif kind == "oversized":
        broken["padding"] = "x" * (max_bytes + 1)
    return json.dumps(broken).encode()


def sample_events(
    stream: str,
    count: int,
    *,
    key_field: str | None,
    event_time: str,
    required: str,
    max_bytes: int,
    seed: int = 7,
    bad_fraction: float = 0.0,
    duplicate_fraction: float = 0.0,
    late_fraction: float = 0.0,
    late_by: timedelta = timedelta(hours=1),
    start: datetime | None = None,
) -> Iterator[Event]:
    """count records for stream: valid events, with the given shares of bad records (cycling
    through every bad kind), exact duplicates of earlier events, and late events (event time
    moved back by late_by). Deterministic for a seed."""
    rng = random.Random(seed)
    recent: list[dict[str, Any]] = []
    bad_made = 0
    for event in good_events(stream, count, seed=seed, start=start):
        roll = rng.random()
        if roll < bad_fraction:
            kind = BAD_KINDS[bad_made % len(BAD_KINDS)]
            bad_made += 1
            value = bad_event(
                kind, event, event_time=event_time, required=required, max_bytes=max_bytes
            )
            key = str(event.get(key_field, "")).encode() if key_field else None
            # Kafka needs a key or a value: a keyless stream's tombstone still carries a key
            yield Event(
                key=key if key is not None or value is not None else b"tombstone", value=value
            )
            continue
        if roll < bad_fraction + duplicate_fraction and recent:
            yield encode(rng.choice(recent), key_field)
            continue
        if roll < bad_fraction + duplicate_fraction + late_fraction:
            moved = datetime.fromisoformat(event[event_time]) - late_by
            event = {**event, event_time: moved.isoformat(timespec="milliseconds")}
        recent = [*recent[-99:], event]
        yield encode(event, key_field)


def stream_samples(stream: StreamSpec, count: int, **options: Any) -> Iterator[Event]:
    """sample_events for a catalog stream (its key, event-time field and size limit)."""
    schema = stream.event_schema
    required = next(
        (
            n
            for n, f in schema.fields.items()
            if f.required and f.type == "string" and n not in (schema.event_time, schema.key)
        ),
        next(iter(schema.fields)),
    )
    return sample_events(
        stream.name,
        count,
        key_field=schema.key,
        event_time=schema.event_time,
        required=required,
        max_bytes=schema.max_event_bytes,
        **options,
    )
