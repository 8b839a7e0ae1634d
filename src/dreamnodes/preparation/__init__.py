"""Pure preparation of one node call, with no I/O: params become a request or an error.

`templates` resolves ``{{ }}`` from the run's context; `inputs` turns labels into values,
validates against the schema and checks the cross-field rules; `prepare` ties them together
with the request mapping (and prices a dry run).
May import: `catalog`, `errors`, `redact`.
"""
