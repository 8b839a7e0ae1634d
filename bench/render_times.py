"""Seconds to render a 5 s clip at the default size and at 1080p, cold (cache cleared) and warm.

Cold is the median (and best) of a few renders with the cache cleared before each.
Run: .venv/bin/python bench/render_times.py [repeats]
"""

from __future__ import annotations

import statistics
import sys
import time

from dreamnodes.sandbox.media import VideoSpec, clear_cache, probe_video, render_video

PROMPT = "a red fox running through snowy woods at dawn, cinematic"


def _timed(spec: VideoSpec) -> tuple[float, bytes]:
    started = time.perf_counter()
    data = render_video(spec)
    return time.perf_counter() - started, data


def main() -> None:
    cases = [
        ("default (144p, 12 fps)", VideoSpec(PROMPT, 5.0, "16:9", "1080p")),
        ("1080p (full_size, 24 fps)", VideoSpec(PROMPT, 5.0, "16:9", "1080p", full_size=True)),
    ]
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"cold: median (best) of {repeats}; warm: served from the cache")
    print(f"{'5 s clip, 16:9':28} {'cold s':>14} {'warm s':>10} {'size':>12}  decoded")
    for label, spec in cases:
        colds = []
        for _ in range(repeats):
            clear_cache()
            cold, data = _timed(spec)
            colds.append(cold)
        warm, _ = _timed(spec)
        info = probe_video(data)
        cold_text = f"{statistics.median(colds):.3f} ({min(colds):.3f})"
        print(
            f"{label:28} {cold_text:>14} {warm:10.6f} {len(data):10,d} B"
            f"  {info.width}x{info.height} {info.frame_count} frames {info.duration_s:.2f} s"
        )


if __name__ == "__main__":
    main()
