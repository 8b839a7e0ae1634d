"""A small multipart/form-data reader for the inline Files upload (no python-multipart needed)."""

from __future__ import annotations

import re

from dreamnodes.sandbox.agents.refs import bad

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_form(body: bytes, content_type: str) -> tuple[dict[str, str], tuple[bytes, str] | None]:
    """Text fields, and the `file` part's bytes and content type (None when absent)."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise bad("file", "multipart body without a boundary")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, str] = {}
    upload: tuple[bytes, str] | None = None
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise bad("file", "malformed multipart part")
        data = data.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params = dict(_PARAM.findall(headers.get("content-disposition", "")))
        name = params.get("name", "")
        if name == "file":
            upload = (data, headers.get("content-type", "application/octet-stream"))
        elif name:
            fields[name] = data.decode("utf-8", "replace")
    return fields, upload
