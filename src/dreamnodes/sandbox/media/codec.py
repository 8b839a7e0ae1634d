"""H.264 MP4 in and out with PyAV: encode RGB frames, decode frames back, probe a file."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

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
    audio_codec: str | None = None  # "aac" when the clip has a soundtrack


def encode_mp4(
    frames: Iterable[RGBFrame], width: int, height: int, fps: int, soundtrack: str | None = None
) -> bytes:
    """H.264 (yuv420p) in MP4 with the `moov` box first, so a browser starts playing at once.

    With a `soundtrack` prompt, an AAC track as long as the video is added (see `_chord`).
    """
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
            # Every stream must exist before the first packet is written.
            audio = _audio_stream(out) if soundtrack is not None else None
            count = 0
            for rgb in frames:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                out.mux(stream.encode(frame))
                count += 1
            out.mux(stream.encode(None))
            if audio is not None and soundtrack is not None:
                _write_audio(out, audio, _chord(soundtrack, count / fps))
        with open(path, "rb") as file:
            return file.read()


AUDIO_RATE = 44100


def _chord(prompt: str, seconds: float) -> NDArray[np.float32]:
    """A soft three-note chord picked from a hash of the prompt, faded in and out."""
    seed = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:4], "big")
    root = 110.0 * 2 ** ((seed % 24) / 12)  # A2 and two octaves up
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    wave = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.25, 1.5))
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.25)
    return (0.15 * wave * fade).astype(np.float32)


def _audio_stream(out: Any) -> Any:
    stream = out.add_stream("aac", rate=AUDIO_RATE)
    stream.layout = "mono"
    return stream


def _write_audio(out: Any, stream: Any, samples: NDArray[np.float32]) -> None:
    size = 1024
    for start in range(0, len(samples), size):
        frame = av.AudioFrame.from_ndarray(
            samples[start : start + size].reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


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
            audio_codec=container.streams.audio[0].codec_context.name
            if container.streams.audio
            else None,
        )
