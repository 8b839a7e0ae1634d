"""The sandbox's settings: ports, auth, timing, limits, faults, storage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SandboxConfig:
    """Every duration below is in service seconds and is divided by `time_scale`."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None  # None: any non-empty key is accepted
    time_scale: float = 1.0
    queued_seconds: float = 0.5
    dreaming_seconds: float = 2.0
    image_seconds: float = 1.0
    limits: bool = True
    video_concurrent: int = 10
    video_per_minute: int = 20
    image_concurrent: int = 40
    image_per_minute: int = 80
    fault_seed: int = 0
    fault_rate_429: float = 0.0
    fault_rate_5xx: float = 0.0
    fault_rate_drop_before: float = 0.0
    fault_rate_drop_after: float = 0.0
    fault_rate_slow: float = 0.0
    slow_seconds: float = 2.0
    fault_rate_truncated: float = 0.0
    full_size: bool = False
    db: str | None = None
    credits_cents: float = 100000.0
    render: bool = True
    fetch_timeout: float = 5.0  # keyframe/media downloads (not scaled)
    # The Luma Agents API face (documented defaults: 30 creates a minute, 10 unfinished jobs)
    agents_per_minute: int = 30
    agents_concurrent: int = 10
    agents_url_ttl: float = 3600.0  # presigned output URLs, service seconds
    agents_balance_usd: float = 1000.0
    agents_hdr_access: bool = True

    def scaled(self, seconds: float) -> float:
        """A service duration in wall-clock seconds."""
        return seconds / self.time_scale if self.time_scale > 0 else seconds
