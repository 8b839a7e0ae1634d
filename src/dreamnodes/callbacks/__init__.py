"""Receiving the providers' generation callbacks: hints that wake a wait, never the truth.

`receiver` is the HTTP receiver with its per-run token URLs; `updates` reads a callback body
(Luma's Generation or Pixazo's status) into the normalised output.
May import: `serving`, `api` (answers), `catalog`, `errors`, `redact`.
"""
