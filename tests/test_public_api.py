"""What a host imports from `dreamnodes` is there, and loading it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import dreamnodes


@pytest.mark.parametrize("name", dreamnodes.__all__)
def test_every_advertised_name_imports(name: str) -> None:
    assert getattr(dreamnodes, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        dreamnodes.nothing_here  # noqa: B018


def test_listing_nodes_does_not_load_the_http_stack() -> None:
    code = (
        "import sys; from dreamnodes.cli import main; main(['nodes']);"
        " print('httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
