"""Daily salts: one per UTC day, shared by every consumer, gone after two days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pipeline import aws
from pipeline.enrich.salts import SaltStore, salt_expiry, visitor_hash

DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)


def stored_days(settings) -> set[str]:
    items = aws.client("dynamodb", settings).scan(TableName=settings.salts_table)["Items"]
    return {item["day"]["S"] for item in items}


def store(settings) -> SaltStore:
    return SaltStore(aws.client("dynamodb", settings), settings.salts_table)


def test_same_day_same_salt_across_consumers(settings):
    first, second = store(settings), store(settings)
    assert first.salt_for(DAY, NOON) == second.salt_for(DAY, NOON)
    assert len(first.salt_for(DAY, NOON)) == 32


def test_salts_rotate_every_day(settings):
    salts = store(settings)
    today = salts.salt_for(DAY, NOON)
    tomorrow = salts.salt_for(DAY + timedelta(days=1), NOON + timedelta(days=1))
    assert today != tomorrow
    assert visitor_hash(today, "s", "1.2.3.4", "ua") != visitor_hash(tomorrow, "s", "1.2.3.4", "ua")


def test_yesterdays_salt_serves_late_events_but_older_ones_are_refused(settings):
    salts = store(settings)
    yesterday = salts.salt_for(DAY - timedelta(days=1), NOON - timedelta(days=1))
    assert salts.salt_for(DAY - timedelta(days=1), NOON) == yesterday
    assert salts.salt_for(DAY - timedelta(days=2), NOON) is None


def test_a_salt_older_than_two_days_no_longer_exists(settings):
    salts = store(settings)
    for offset in range(4):
        salts.salt_for(DAY + timedelta(days=offset), NOON + timedelta(days=offset))
    assert stored_days(settings) == {"2026-11-22", "2026-11-23"}


def test_a_fresh_consumer_purges_too(settings):
    store(settings).salt_for(DAY, NOON)
    store(settings).salt_for(DAY + timedelta(days=2), NOON + timedelta(days=2))
    assert stored_days(settings) == {"2026-11-22"}


def test_salt_ttl_is_the_end_of_the_next_day():
    assert salt_expiry(DAY) == int(datetime(2026, 11, 22, tzinfo=UTC).timestamp())


def test_visitor_hash_is_short_and_keyed():
    salt = b"k" * 32
    value = visitor_hash(salt, "example.com", "203.0.113.7", "UA")
    assert len(value) == 16 and int(value, 16) >= 0
    assert value != visitor_hash(b"j" * 32, "example.com", "203.0.113.7", "UA")
    assert value != visitor_hash(salt, "other.com", "203.0.113.7", "UA")
