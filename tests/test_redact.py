"""redact: secrets out of text and JSON values, in any letter case and echo form."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from dreamnodes.redact import (
    MAX_DEPTH,
    REDACTED,
    SECRET_KEY,
    TOO_DEEP,
    scrub,
    scrub_text,
    secret_pattern,
)

KEY = "sk-Live-7f3C9a1B2d4E/6f8+091a=="


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        KEY.lower(),
        KEY.upper(),
        KEY.swapcase(),
        quote(KEY, safe=""),
        quote(KEY, safe="").lower(),
        json.dumps(KEY)[1:-1].replace("/", "\\/"),
        f"Bearer {KEY}",
    ],
    ids=["exact", "lower", "upper", "swapped", "url", "url-lower", "json-slash", "bearer"],
)
def test_an_echoed_key_is_redacted_whatever_its_case_or_encoding(echo: str) -> None:
    text = f"invalid key '{echo}' (check {echo})"
    out = scrub_text(text, [KEY])
    assert KEY.lower() not in out.lower()
    assert quote(KEY, safe="").lower() not in out.lower()
    assert out.count(REDACTED) == 2


def test_the_whole_header_goes_before_the_key_inside_it() -> None:
    assert scrub_text(f"sent Bearer {KEY}!", [f"Bearer {KEY}", KEY], "***") == "sent ***!"


def test_no_secrets_means_no_change_and_empty_secrets_are_ignored() -> None:
    assert secret_pattern([]) is None
    assert secret_pattern(["", ""]) is None
    assert scrub_text("nothing to hide", ["", ""]) == "nothing to hide"


def test_scrub_is_a_drop_in_for_the_stores_scrub_and_ignores_case() -> None:
    value = {
        "Password": "p",
        "client_secret": "s",
        "access_token": "t",
        "X-Api-Key": "k",
        "max_tokens": 10,
        "prompt": "say ABC123 twice: abc123",
        "list": ("abc123", 3, None),
        "raw": b"abC123 \xff",
        7: {"nested": ["Abc123"]},
    }
    assert scrub(value, ["abc123"]) == {
        "Password": REDACTED,
        "client_secret": REDACTED,
        "access_token": REDACTED,
        "X-Api-Key": REDACTED,
        "max_tokens": 10,
        "prompt": f"say {REDACTED} twice: {REDACTED}",
        "list": [REDACTED, 3, None],
        "raw": f"{REDACTED} \ufffd",
        "7": {"nested": [REDACTED]},
    }
    assert value["prompt"] == "say ABC123 twice: abc123"  # the input is not changed


def test_a_key_in_a_key_name_is_redacted_too() -> None:
    assert scrub({f"k{KEY.upper()}": 1}, [KEY]) == {f"k{REDACTED}": 1}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("API Key", True),
        ("authorisation", True),
        ("passwd", True),
        ("refresh_token", True),
        ("Set-Cookie", True),
        ("max_tokens", False),
        ("prompt", False),
    ],
)
def test_secret_key_names(name: str, secret: bool) -> None:
    assert bool(SECRET_KEY.search(name)) is secret


def test_what_comes_out_can_always_be_written() -> None:
    deep: Any = "bottom"
    for _ in range(5000):
        deep = [deep]
    out = scrub({"prompt": "a\ud800b", "deep": deep})
    assert out["prompt"] == "a\ufffdb"
    text = json.dumps(out, ensure_ascii=False)
    text.encode("utf-8")
    assert TOO_DEEP in text
    assert text.count("[") <= MAX_DEPTH + 1  # cut off MAX_DEPTH levels below the top
    assert scrub_text("x\udfffy", []) == "x\ufffdy"
