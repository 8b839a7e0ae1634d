"""The media types a download saves, and which one a body is: its Content-Type and first bytes.

Both must agree: a body is saved only when its first bytes are a known video or image
(ISO-BMFF for MP4/QuickTime, EBML for WebM/Matroska, JPEG, PNG, GIF, WebP) and the declared
Content-Type, when it names a type, is that same one. An HTML login page served as
`video/mp4` is refused, not saved as `x.mp4`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from dreamnodes.errors import DreamError

__all__ = [
    "FORMATS",
    "SNIFF_BYTES",
    "Kind",
    "MediaFormat",
    "choose_format",
    "format_for_extension",
    "format_for_mime",
    "sniff",
]

Kind = Literal["video", "image"]

SNIFF_BYTES: Final = 16
_GENERIC_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
)
# The box an ISO-BMFF file may start with: `ftyp` for MP4, and what old QuickTime files open with.
_ISOBMFF_FIRST_BOXES: Final = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"})


@dataclass(frozen=True)
class MediaFormat:
    """A media type we save: its kind, MIME type, extensions (first preferred) and magic."""

    kind: Kind
    mime: str
    extensions: tuple[str, ...]
    signature: str
    aliases: tuple[str, ...] = ()


FORMATS: Final = (
    MediaFormat("video", "video/mp4", (".mp4", ".m4v"), "isobmff", ("video/x-m4v",)),
    MediaFormat("video", "video/quicktime", (".mov",), "isobmff"),
    MediaFormat("video", "video/webm", (".webm",), "ebml"),
    MediaFormat("video", "video/x-matroska", (".mkv",), "ebml"),
    MediaFormat("image", "image/jpeg", (".jpg", ".jpeg"), "jpeg", ("image/jpg", "image/pjpeg")),
    MediaFormat("image", "image/png", (".png",), "png"),
    MediaFormat("image", "image/gif", (".gif",), "gif"),
    MediaFormat("image", "image/webp", (".webp",), "webp"),
)
_SIGNATURE_NAMES: Final = {
    "isobmff": "an MP4/QuickTime file",
    "ebml": "a WebM/Matroska file",
    "jpeg": "a JPEG image",
    "png": "a PNG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
}


def format_for_mime(mime: str) -> MediaFormat | None:
    mime = mime.split(";", 1)[0].strip().lower()
    for fmt in FORMATS:
        if mime == fmt.mime or mime in fmt.aliases:
            return fmt
    return None


def format_for_extension(ext: str) -> MediaFormat | None:
    ext = ext.lower()
    return next((fmt for fmt in FORMATS if ext in fmt.extensions), None)


def sniff(head: bytes) -> str | None:
    """The signature the first bytes show (`isobmff`, `ebml`, `jpeg`, `png`, `gif`, `webp`)."""
    if head[4:8] in _ISOBMFF_FIRST_BOXES:
        return "isobmff"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "ebml"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _looks_like(head: bytes) -> str:
    """A few words on what unknown bytes look like, for the error message."""
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML/XML page"
    if text.startswith((b"{", b"[")):
        return "JSON"
    return "not a known video or image"


def choose_format(
    content_type: str | None, head: bytes, ext: str | None, shown: str, filename_given: bool
) -> MediaFormat:
    """The format of the body, from its Content-Type and first bytes, checked against `ext`.

    `shown` names the URL in errors (without its query).
    """
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    by_header = format_for_mime(declared)
    seen = sniff(head)
    if by_header is None and declared not in _GENERIC_TYPES:
        raise DreamError(
            "provider_error",
            f"{shown} answered with Content-Type {declared!r}, not a video or image",
            field="url",
        )
    if seen is None:
        raise DreamError(
            "provider_error",
            f"{shown} answered with Content-Type {declared or 'none'!r} but its first bytes "
            f"are {_looks_like(head)}; nothing was saved",
            field="url",
        )
    if by_header is not None and by_header.signature != seen:
        raise DreamError(
            "provider_error",
            f"{shown} says Content-Type {declared!r} but its bytes are {_SIGNATURE_NAMES[seen]}",
            field="url",
        )
    if by_header is not None:
        fmt = by_header
    else:
        candidates = [f for f in FORMATS if f.signature == seen]
        fmt = next((f for f in candidates if ext in f.extensions), candidates[0])
    if ext is not None and ext not in fmt.extensions:
        raise DreamError(
            "invalid_input" if filename_given else "provider_error",
            f"the extension {ext!r} does not match the content type {fmt.mime!r} "
            f"(expected {' or '.join(fmt.extensions)})",
            field="filename" if filename_given else "url",
        )
    return fmt
