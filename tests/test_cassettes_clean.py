"""No cassette carries a key: secret headers are filtered, and nothing key-like is left anywhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

import cassettes

FILES = sorted(cassettes.CASSETTES.rglob("*.yaml"))
# A long base64/hex/token-ish value right after a key-ish name (JSON, YAML, query or header).
KEYISH_ASSIGNMENT = re.compile(
    r"""(?ix)
    (api[_-]?key|apikey|secret|token|password|subscription[_-]?key|access[_-]?key|auth)
    ["']?\s*[:=]\s*["']?
    ([A-Za-z0-9+/_\-]{24,}={0,2})
    """
)
BEARER = re.compile(r"(?i)bearer\s+(\S+)")
HEX_OR_B64_SECRET = re.compile(r"(?i)\b(sk|pk|luma|key)[-_][A-Za-z0-9]{20,}")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _interactions(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(_text(path))
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions


def test_there_are_cassettes_to_scan() -> None:
    assert len(FILES) >= 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(cassettes.CASSETTES)))
def test_cassette_has_no_key_like_strings(path: Path) -> None:
    text = _text(path)
    for key in cassettes.TEST_KEYS.values():
        assert key not in text, f"the recorder's test key {key!r} leaked"
    assert [b for b in BEARER.findall(text) if b != cassettes.FILTERED] == []
    assert KEYISH_ASSIGNMENT.findall(text) == []
    assert HEX_OR_B64_SECRET.findall(text) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(cassettes.CASSETTES)))
def test_secret_headers_are_filtered(path: Path) -> None:
    seen_auth = False
    for interaction in _interactions(path):
        for part in ("request", "response"):
            for name, values in interaction[part].get("headers", {}).items():
                if name.lower() in cassettes.SECRET_HEADERS:
                    assert values in ([cassettes.FILTERED], cassettes.FILTERED), (
                        part,
                        name,
                        values,
                    )
                    seen_auth = True
    # Every cassette has API requests, which carry a credential header (filtered).
    assert seen_auth


def test_the_scan_catches_a_leak(tmp_path: Path) -> None:
    leaked = (
        "authorization:\n- Bearer luma-3f9c2a7b1d8e4f60a9b7c3d2e1f0a9b8\n"
        'body: \'{"api_key": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}\'\n'
    )
    assert BEARER.findall(leaked) == ["luma-3f9c2a7b1d8e4f60a9b7c3d2e1f0a9b8"]
    assert KEYISH_ASSIGNMENT.findall(leaked)
    assert HEX_OR_B64_SECRET.findall(leaked)
