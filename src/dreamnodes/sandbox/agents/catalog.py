"""The Agents API's vocabulary as the sandbox serves it: paths, models, types, options, prices.

Facts come from /work/shared/AGENTS_API.md (SDK `luma-agents` 0.5.0 and Luma's docs pages);
where a value is the sandbox's own choice it says so.
"""

from __future__ import annotations

from typing import Any, Final

PREFIX: Final = "/agents/v1"  # the API (Luma: https://agents.lumalabs.ai/v1)
UPLOAD_PREFIX: Final = "/agents/uploads/"  # presigned PUT targets (Luma: S3)
OUTPUT_PREFIX: Final = "/agents/outputs/"  # presigned output downloads (Luma: S3)
API_VERSION: Final = "2026-04-01"

MODELS: Final = ("uni-1", "uni-1-max", "ray-3.2")
TYPES: Final = ("image", "image_edit", "video", "video_edit", "video_reframe", "layering")
MODEL_TYPES: Final = {
    "uni-1": ("image", "image_edit", "layering"),
    "uni-1-max": ("image", "image_edit"),
    "ray-3.2": ("video", "video_edit", "video_reframe"),
}
VIDEO_TYPES: Final = ("video", "video_edit", "video_reframe")
IMAGE_RATIOS: Final = ("3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3")
VIDEO_RATIOS: Final = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
MODEL_RATIOS: Final = {"uni-1": IMAGE_RATIOS, "uni-1-max": IMAGE_RATIOS, "ray-3.2": VIDEO_RATIOS}
STYLES: Final = ("auto", "manga")
OUTPUT_FORMATS: Final = ("png", "jpeg")
DURATIONS: Final = ("5s", "10s")
RESOLUTIONS: Final = ("360p", "540p", "720p", "1080p")
HDR_RESOLUTIONS: Final = ("720p", "1080p")
EDIT_STRENGTHS: Final = tuple(f"{k}_{n}" for k in ("adhere", "flex", "reimagine") for n in "123")
POSE_STRENGTHS: Final = ("precise", "coarse")
LAYERING_RESOLUTIONS: Final = ("1k", "2k")
PURPOSES: Final = ("input", "reference")
FILE_STATES: Final = ("pending", "ready", "failed", "deleted")

FPS: Final = 24  # Ray 3.2's frame grid: 5s -> indexes 0..120, 10s -> 0..240
MAX_KEYFRAMES: Final = 64
MAX_IMAGE_REFS: Final = {"image": 9, "image_edit": 8}
MAX_PROMPT: Final = 6000
MAX_LAYERING_PROMPT: Final = 500
MAX_USER_ID: Final = 256
MAX_EDIT_SOURCE_S: Final = 18.0
MAX_FILE_BYTES: Final = 5 * 1024**3  # the S3 single-PUT ceiling
MAX_INPUT_BYTES: Final = 50 * 1024 * 1024  # image_too_large beyond this (old docs: 50 MB)
MAX_INPUT_PIXELS: Final = 100_000_000  # sandbox's choice: image_too_large beyond this too
DEFAULT_VIDEO_RATIO: Final = "16:9"  # not documented; the sandbox's choice
DEFAULT_IMAGE_RATIO: Final = "1:1"  # "the model chooses"; the sandbox's choice

IMAGE_TYPES_IN: Final = ("image/jpeg", "image/png", "image/webp")
VIDEO_TYPES_IN: Final = ("video/mp4", "video/quicktime", "video/webm")

FAILURE_CODES: Final = (
    "content_moderated",
    "generation_failed",
    "budget_exhausted",
    "output_not_found",
    "image_too_large",
    "unsupported_format",
    "corrupt_input",
    "invalid_request",
    "rate_limited",
)
# failure_reason texts: the sandbox's wording (Luma's is not published).
FAILURE_REASONS: Final = {
    "content_moderated": "Prompt or input image violated content guidelines",
    "generation_failed": "Internal model error during generation",
    "budget_exhausted": "Ran out of funds mid-generation",
    "output_not_found": "Generated output could not be retrieved",
    "image_too_large": "An input image exceeded the size limit",
    "unsupported_format": "An input media file was in an unsupported format",
    "corrupt_input": "An input media file could not be decoded",
    "invalid_request": "The request could not be processed",
    "rate_limited": "Upstream provider throttled the request",
}
BLACKLIST: Final = ("blacklisted",)  # a prompt with one of these is content_moderated
# A prompt containing `[fail:<code>]` fails with that code: a sandbox-only rehearsal hook.
FAIL_MARK: Final = "[fail:"

# Prices in USD [AGENTS_API.md section 8; Ray figures are third-party].
IMAGE_PRICES: Final = {"uni-1": (0.0404, 0.0434), "uni-1-max": (0.1000, 0.1030)}
REF_STEP: Final = 0.003
VIDEO_5S: Final = {"360p": 0.06, "540p": 0.15, "720p": 0.30, "1080p": 1.20}
REFRAME_PER_S: Final = {"360p": 0.03, "540p": 0.06, "720p": 0.12, "1080p": 0.36}
LAYER_PRICE: Final = {"1k": 0.02, "2k": 0.04}  # not published; the sandbox's figures


def price(body: dict[str, Any], source_seconds: float = 5.0) -> float:
    """What a create costs (USD), from the validated body."""
    model, kind = str(body["model"]), str(body["type"])
    refs = len(body.get("image_ref") or [])
    if kind in ("image", "image_edit"):
        text, edit = IMAGE_PRICES[model]
        base = edit if kind == "image_edit" or refs else text
        return round(base + REF_STEP * max(0, refs - 1), 4)
    if kind == "layering":
        layering = body.get("layering") or {}
        return LAYER_PRICE[str(layering.get("resolution") or "1k")] * 3
    video = body.get("video") or {}
    resolution = str(video.get("resolution") or "720p")
    if kind == "video_reframe":
        return round(REFRAME_PER_S[resolution] * source_seconds, 4)
    blocks = 3 if video.get("duration") == "10s" else 1  # 10s SDR is 3x 5s in the 3P table
    factor = (2.0 if video.get("hdr") else 1.0) + (1.0 if video.get("exr_export") else 0.0)
    cost = VIDEO_5S[resolution] * blocks * factor
    return round(cost * (1.8 if kind == "video_edit" else 1.0), 4)
