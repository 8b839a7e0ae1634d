"""`dreamnodes serve`: the nodes as an HTTP service, with the run log and a web page.

`app` builds the Starlette app and the `Service` that owns it (runners, background runs, the
mounted callback receiver); `auth` is the bearer token and the page's session cookie;
`envelope` reads a run's or batch's request body into a checked spec (every input error a 422
naming its fields); `schemas` gives the nodes with their schemas inlined and the OpenAPI 3.1
document; `runs` and `batches` start work in the background through the run log's exactly-once
protocol (`run_recorded`, `run_items`) and answer with views scrubbed of provider keys; `ledger`
keeps the service's own durable tables (idempotency keys, batches, notifications) beside the
run log; `notify` delivers signed notifications to a caller's `notify_url`; `static/` is the
page (package data, no build step, nothing fetched from the internet).
May import: `runlog` and everything below it (`execution`, `callbacks`, `downloads`, `api`,
`preparation`, `catalog`, `serving`, `errors`, `redact`). Never `cli` or `sandbox`: the
command line starts the sandbox and hands its URLs over in `ServiceConfig`.
"""

from dreamnodes.service.app import Service
from dreamnodes.service.config import Endpoint, ServiceConfig

__all__ = ["Endpoint", "Service", "ServiceConfig"]
