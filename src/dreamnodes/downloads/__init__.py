"""Saving generated media safely: public addresses only, bounded, type-checked, atomic.

`download` saves one URL or a generation's assets; `addresses` guards where a request may go;
`fetch` follows redirects hop by hop and inflates within the cap; `mediatypes` checks the first
bytes against the media type; `partfiles` keeps no partial file behind.
May import: `errors`, `redact`.
"""
