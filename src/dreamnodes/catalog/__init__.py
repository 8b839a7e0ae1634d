"""What a host reads: the manifest, the node declarations and their schemas, compiled once.

`package` loads and checks `manifest.json`, `nodes/` and `schemas/`; `conditions` and `mapping`
compile the declarations' rule and request languages; `requests` holds the request and answer
shapes every later room speaks; `pricing` estimates what a call costs.
May import: `dreamnodes.errors`, `dreamnodes.redact`. Nothing else of the runtime.
"""
