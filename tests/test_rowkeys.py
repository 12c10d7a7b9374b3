"""KeyGuard tells a repeated key with the same content (a duplicate) from one with other content."""

from __future__ import annotations

import decimal

from tap_callreports.rowkeys import KeyGuard


def test_key_guard_tells_identical_repeats_from_conflicts():
    guard = KeyGuard(("call_id",))
    for row in (
        {"call_id": "a", "talk": 1},
        {"call_id": "a", "talk": 1},  # the same row again: a duplicate, no conflict
        {"call_id": "b", "talk": 1},
        {"call_id": "b", "talk": 2},  # the same key, other content
        {"call_id": "b", "talk": 2},
        {"call_id": "c", "talk": decimal.Decimal("1.50")},
        {"call_id": "c", "talk": decimal.Decimal("1.5")},  # exact numbers compare as written
        {1: "a non-text key", "call_id": "d"},
    ):
        assert guard.add(row) is False
    assert (guard.missing, guard.duplicates(), guard.conflicts()) == (0, 4, 3)


def test_key_guard_compares_content_of_composite_keys():
    guard = KeyGuard(("user_id", "status_start_at"))
    guard.add({"user_id": "u", "status_start_at": "t", "label": "away"})
    guard.add({"user_id": "u", "status_start_at": "t", "label": "away"})
    assert (guard.duplicates(), guard.conflicts()) == (1, 0)
    guard.add({"user_id": "u", "status_start_at": "t", "label": "on_a_call"})
    assert (guard.duplicates(), guard.conflicts()) == (2, 2)
