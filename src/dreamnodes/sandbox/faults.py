"""Seeded, reproducible faults.

One draw of `random.Random(fault_seed)` per API request picks at most one fault; the same seed
and the same sequence of requests give the same faults. Where each applies:
- `429`, `5xx` (500 or 503), `drop_before` (connection closed, nothing processed), `slow`
  (answered after `slow_seconds`), `truncated` (a 2xx body cut in half, then closed): every
  API route of both providers (Luma under /dream-machine/v1, Pixazo) except `/ping`.
- `drop_after`: only create routes; the generation is created, then the connection is closed
  without an answer.
Asset downloads (`/sandbox/assets/...`) never get faults.
"""

from __future__ import annotations

import random
from typing import Literal

from dreamnodes.sandbox.config import SandboxConfig

Fault = Literal["429", "500", "503", "drop_before", "drop_after", "slow", "truncated"]


class Faults:
    def __init__(self, cfg: SandboxConfig) -> None:
        self._rng = random.Random(cfg.fault_seed)
        self._bands: list[tuple[str, float]] = [
            ("429", cfg.fault_rate_429),
            ("5xx", cfg.fault_rate_5xx),
            ("drop_before", cfg.fault_rate_drop_before),
            ("slow", cfg.fault_rate_slow),
            ("truncated", cfg.fault_rate_truncated),
            ("drop_after", cfg.fault_rate_drop_after),
        ]
        self.active = any(rate > 0 for _, rate in self._bands)

    def draw(self, is_create: bool) -> Fault | None:
        if not self.active:
            return None
        roll = self._rng.random()
        pick = self._rng.random()  # always drawn, so the sequence does not depend on outcomes
        edge = 0.0
        for name, rate in self._bands:
            edge += rate
            if roll < edge:
                if name == "5xx":
                    return "500" if pick < 0.5 else "503"
                if name == "drop_after" and not is_create:
                    return None
                return name  # type: ignore[return-value]
        return None
