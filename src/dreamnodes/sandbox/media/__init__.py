"""Real, playable media for the sandbox: H.264 MP4 clips and JPEG/PNG images of a request.

render_video(VideoSpec(...)) -> MP4 bytes     render_image(prompt, ratio, "jpg") -> bytes
probe_video(mp4) -> VideoInfo                  clear_cache()
"""

from .codec import VideoInfo, decode_frames, probe_video
from .render import clear_cache, render_image, render_video
from .spec import VideoSpec

__all__ = [
    "VideoInfo",
    "VideoSpec",
    "clear_cache",
    "decode_frames",
    "probe_video",
    "render_image",
    "render_video",
]
