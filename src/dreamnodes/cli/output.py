"""The command line's output contract: JSON on stdout, one readable line on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from dreamnodes.errors import DreamError


def emit(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(error: DreamError) -> int:
    emit({"error": error.to_dict()})
    sys.stderr.write(f"dreamnodes: {error}\n")
    return error.exit_code
