"""Presigned URLs served by the sandbox itself, in the shape of S3's (X-Amz-* query) with an
HMAC signature, and S3's XML refusals: 403 `AccessDenied` "Request has expired" once the URL is
older than X-Amz-Expires (service seconds, divided by the time scale), 403
`SignatureDoesNotMatch` for a forged or altered URL, 404 `NoSuchKey` for a missing object.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.responses import Response

_DEADLINE = "X-Sandbox-Deadline"  # the precise wall-clock expiry (X-Amz-Date has seconds only)


class Signer:
    def __init__(self, scale: float) -> None:
        self._key = secrets.token_bytes(32)
        self._scale = scale if scale > 0 else 1.0

    def _digest(self, path: str, deadline: str) -> str:
        return hmac.new(self._key, f"{path}\n{deadline}".encode(), hashlib.sha256).hexdigest()

    def sign(self, base_url: str, path: str, expires_s: float) -> tuple[str, datetime]:
        """A URL for `path` valid for `expires_s` service seconds, and when it expires."""
        now = time.time()
        deadline = now + expires_s / self._scale
        stamp = f"{deadline:.3f}"
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Date": datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ"),
                "X-Amz-Expires": str(round(expires_s)),
                _DEADLINE: stamp,
                "X-Amz-Signature": self._digest(path, stamp),
            }
        )
        return f"{base_url}{path}?{query}", datetime.fromtimestamp(deadline, UTC)

    def refusal(self, path: str, query: dict[str, str]) -> Response | None:
        """None if the query signs `path` and has not expired; else S3's 403."""
        stamp = query.get(_DEADLINE, "")
        signature = query.get("X-Amz-Signature", "")
        if not stamp or not hmac.compare_digest(signature, self._digest(path, stamp)):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            expired = time.time() > float(stamp)
        except ValueError:
            expired = True
        if expired:
            return s3_error(403, "AccessDenied", "Request has expired")
        return None


def s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(body, status, media_type="application/xml")
