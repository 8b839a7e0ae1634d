"""Running one node: send under limits, wait (poll or callback), download, or run it here.

`runner` is the Runner (one client per provider and key) and its waiting; `tracking` holds the
running slots of creates nobody waits for; `local_nodes` runs the nodes that need no API;
`live_options` fills a field's dropdown from its declared list node.
May import: `callbacks`, `downloads`, `api`, `preparation`, `catalog`, `errors`, `redact`.
"""
