"""H.264 MP4 in and out with PyAV: encode RGB frames, decode frames back, probe a file."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import av
import numpy as np
from numpy.typing import NDArray

from dreamnodes.errors import DreamError

RGBFrame = NDArray[np.uint8]  # (height, width, 3)


@dataclass(frozen=True)
class VideoInfo:
    """What a player would see of an MP4: its length, size, codec and frames."""

    duration_s: float  # the video stream's duration
    container_duration_s: float | None  # the container's own duration, if it states one
    width: int
    height: int
    codec: str  # "h264"
    pix_fmt: str  # "yuv420p"
    fps: float
    frame_count: int  # frames actually decoded


def encode_mp4(frames: Iterable[RGBFrame], width: int, height: int, fps: int) -> bytes:
    """H.264 (yuv420p) in MP4 with the `moov` box first, so a browser starts playing at once."""
    # The mp4 muxer's faststart pass re-reads its output, which PyAV cannot do on a BytesIO.
    with tempfile.TemporaryDirectory(prefix="dreamnodes-media-") as folder:
        path = os.path.join(folder, "clip.mp4")
        with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=fps)
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            # ultrafast: no B-frames, so timestamps are plain and renders are quick.
            stream.options = {"preset": "ultrafast", "crf": "23"}
            for rgb in frames:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        with open(path, "rb") as file:
            return file.read()


def _open(data: bytes, what: str) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(data), mode="r")
    except av.FFmpegError as exc:
        raise DreamError("invalid_input", f"{what} is not a readable video: {exc}") from exc


def decode_frames(data: bytes) -> list[RGBFrame]:
    """Every frame of the first video stream, as RGB arrays (for tests and small clips)."""
    with _open(data, "video") as container:
        return [
            cast(RGBFrame, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)
        ]


def first_and_last_frame(data: bytes) -> tuple[RGBFrame, RGBFrame]:
    """The first and last frames of a video, converting only those two to RGB."""
    first = last = None
    try:
        with _open(data, "source video") as container:
            for frame in container.decode(video=0):
                if first is None:
                    first = frame
                last = frame
    except av.FFmpegError as exc:
        raise DreamError("invalid_input", f"source video cannot be decoded: {exc}") from exc
    if first is None or last is None:
        raise DreamError("invalid_input", "source video has no frames")
    return (
        cast(RGBFrame, first.to_ndarray(format="rgb24")),
        cast(RGBFrame, last.to_ndarray(format="rgb24")),
    )


def probe_video(data: bytes) -> VideoInfo:
    """Decode an MP4 with PyAV and report what it holds."""
    with _open(data, "video") as container:
        stream = container.streams.video[0]
        frame_count = sum(1 for _ in container.decode(stream))
        ctx = stream.codec_context
        rate = stream.average_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = frame_count / fps if fps else 0.0
        container_duration = (
            container.duration / av.time_base if container.duration is not None else None
        )
        return VideoInfo(
            duration_s=duration,
            container_duration_s=container_duration,
            width=ctx.width,
            height=ctx.height,
            codec=ctx.name,
            pix_fmt=str(ctx.pix_fmt),
            fps=fps,
            frame_count=frame_count,
        )
