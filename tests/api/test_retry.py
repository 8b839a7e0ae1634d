"""The retry policy as data, and the delays it asks backoff for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import backoff
import jsonschema
import pydantic
import pytest

from dreamnodes.api.retry import RetryPolicy, retry_after_seconds, retry_delays
from dreamnodes.errors import DreamError

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "retry_policy.json").read_text(encoding="utf-8")
)


class Failure(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("failed")
        self.retry_after = retry_after


def delays_for(policy: RetryPolicy, failures: list[Exception], rng: Any = None) -> list[float]:
    gen = retry_delays(policy) if rng is None else retry_delays(policy, rng)
    gen.send(None)  # as backoff primes it
    return [gen.send(f) for f in failures]


def test_defaults_are_five_attempts_with_jitter() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.first_delay, policy.max_delay) == (5, 1.0, 30.0)
    assert (policy.multiplier, policy.jitter, policy.retry_after_cap) == (2.0, True, 60.0)


@pytest.mark.parametrize("bad", [0, 6, -1, 100, True, "3", 2.5])
def test_max_attempts_out_of_range_is_invalid_input_naming_the_field(bad: Any) -> None:
    with pytest.raises(DreamError) as caught:
        RetryPolicy(max_attempts=bad)
    assert caught.value.code == "invalid_input"
    assert caught.value.field == "max_attempts"
    assert repr(bad) in caught.value.message


def test_policy_is_frozen() -> None:
    policy = RetryPolicy(max_attempts=2)
    with pytest.raises(pydantic.ValidationError):
        policy.max_attempts = 5


CASES: list[dict[str, Any]] = [
    {},
    {"max_attempts": 1},
    {"max_attempts": 5, "jitter": False},
    {"first_delay": 0, "max_delay": 0, "multiplier": 1, "retry_after_cap": 0},
    {"first_delay": 60, "max_delay": 300, "multiplier": 10, "retry_after_cap": 600},
    {"max_attempts": 0},
    {"max_attempts": 6},
    {"max_attempts": "3"},
    {"max_attempts": True},
    {"first_delay": -0.1},
    {"first_delay": 61},
    {"max_delay": 301},
    {"multiplier": 0.5},
    {"retry_after_cap": -1},
    {"jitter": "yes"},
    {"retries": 3},
]


@pytest.mark.parametrize("data", CASES, ids=[json.dumps(c) for c in CASES])
def test_schema_file_and_model_agree(data: dict[str, Any]) -> None:
    schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(data)
    try:
        RetryPolicy(**data)
        model_ok = True
    except DreamError:
        model_ok = False
    assert schema_ok == model_ok


def test_schema_is_draft_2020_12_with_its_id_and_the_models_defaults() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://dreamnodes.invalid/schemas/retry_policy.json"
    defaults = {k: v["default"] for k, v in SCHEMA["properties"].items()}
    assert defaults == RetryPolicy().model_dump()


def test_delays_grow_by_the_multiplier_and_stop_at_the_cap() -> None:
    policy = RetryPolicy(first_delay=1, multiplier=2, max_delay=10, jitter=False)
    assert delays_for(policy, [Failure()] * 6) == [1, 2, 4, 8, 10, 10]


def test_equal_jitter_keeps_each_delay_between_half_and_all_of_it() -> None:
    policy = RetryPolicy(first_delay=2, multiplier=2, max_delay=30)
    assert delays_for(policy, [Failure()] * 3, rng=lambda: 0.0) == [1, 2, 4]
    assert delays_for(policy, [Failure()] * 3, rng=lambda: 1.0) == [2, 4, 8]
    for _ in range(50):
        got = delays_for(policy, [Failure()] * 5)
        for delay, full in zip(got, [2, 4, 8, 16, 30], strict=True):
            assert full / 2 <= delay <= full


def test_retry_after_is_waited_exactly_without_jitter_and_capped() -> None:
    policy = RetryPolicy(jitter=True, retry_after_cap=60)
    got = delays_for(policy, [Failure(7.5), Failure(600), Failure(0)], rng=lambda: 0.0)
    assert got == [7.5, 60, 0]


@pytest.mark.parametrize("asked", [float("nan"), float("inf"), -1.0, True])
def test_an_unusable_retry_after_falls_back_to_the_policys_backoff(asked: float) -> None:
    policy = RetryPolicy(first_delay=1, jitter=False)
    assert delays_for(policy, [Failure(asked), Failure(asked), Failure(asked)]) == [1, 2, 4]


def test_exponential_steps_continue_after_a_retry_after() -> None:
    policy = RetryPolicy(first_delay=1, jitter=False)
    assert delays_for(policy, [Failure(), Failure(3), Failure()]) == [1, 3, 4]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": " 3 "}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
        # Not a finite, non-negative number: ignored, so the policy's backoff applies.
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "NaN"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "-Infinity"}, None),
        ({"retry-after": "1e400"}, None),
        ({"retry-after": "9" * 400}, None),
        ({"retry-after": "1_0"}, None),
        ({"retry-after": "Mon, 01 Jan 99999 00:00:00 GMT"}, None),
        ({"retry-after-ms": "nan"}, None),
        ({"retry-after-ms": "-5"}, None),
        ({"retry-after-ms": "inf", "retry-after": "4"}, 4.0),
    ],
)
def test_retry_after_headers_in_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    when = format_datetime(datetime(2025, 1, 1, 12, 0, 42, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds({"retry-after": when}, now=now) == 42.0
    assert retry_after_seconds({"retry-after": when}, now=now + 100) == 0.0


def test_backoff_sends_failures_into_the_generator() -> None:
    waits: list[float] = []
    calls: list[int] = []

    @backoff.on_exception(
        retry_delays,
        Failure,
        max_tries=3,
        jitter=None,
        logger=None,
        on_backoff=lambda d: waits.append(d["wait"]),
        policy=RetryPolicy(first_delay=0.001, multiplier=3, jitter=False),
    )
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Failure(retry_after=0.002)
        if len(calls) == 2:
            raise Failure()
        return "ok"

    assert flaky() == "ok"
    assert waits == [0.002, 0.003]  # Retry-After first, then the second exponential step
