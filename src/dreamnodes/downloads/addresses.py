"""Which addresses a download may reach: public ones, the provider's own origin, or all on opt-in.

A download fetches a URL that a workflow (or a provider's answer) hands over, so without a
guard every host running the node would fetch `http://169.254.169.254/`, `http://127.0.0.1:6379/`
or anything on its private network for whoever writes the workflow. `AddressGuard.check`:

- resolves the URL's host (`getaddrinfo`, which also reads numeric hosts in every form the C
  library accepts: `2130706433`, `0x7f.1`, `127.1`, `[::ffff:127.0.0.1]`...) and refuses the URL
  if ANY address it resolves to is not public: loopback, private, link-local (so the cloud
  metadata service 169.254.169.254), carrier-grade NAT 100.64.0.0/10, multicast, unspecified,
  reserved, documentation and benchmark ranges; IPv6 addresses that embed an IPv4 one
  (IPv4-mapped, 6to4, Teredo, NAT64 64:ff9b::/96) are judged by the IPv4 address inside;
- returns the address it checked, and the download connects to that very address (the
  request goes to the IP with the original `Host` header and TLS server name), so a DNS
  answer that changes between the check and the connection (DNS rebinding) is not followed;
- lets through, unchecked, the origins (scheme, host, port) it was given as trusted: the
  provider base URL the run uses, so that the sandbox on 127.0.0.1 keeps working;
- lets everything through when private URLs are allowed: `allow_private_urls=True` in Python,
  `--allow-private-urls` on the command line, or `DREAMNODES_ALLOW_PRIVATE_URLS=1`.

The download checks every redirect hop the same way (`dreamnodes.downloads.fetch`). Not covered: an
HTTP proxy from the environment is told the checked IP, but what the proxy then reaches is
its own business, and where only a proxy can resolve names, downloads need the opt-in; a
public server may still answer with whatever it likes (the size cap and the content checks
in `dreamnodes.downloads.download` handle that); other HTTP clients of the package (the API client,
the sandbox's keyframe fetches) are not guarded here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Final

import httpx

from dreamnodes.errors import DreamError

__all__ = ["ENV_ALLOW_PRIVATE", "AddressGuard", "IPAddress", "not_public_because", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Origin = tuple[str, str, int]

ENV_ALLOW_PRIVATE: Final = "DREAMNODES_ALLOW_PRIVATE_URLS"
OPT_IN: Final = (
    f"to allow it, run with --allow-private-urls or set {ENV_ALLOW_PRIVATE}=1 "
    "(in Python: allow_private_urls=True)"
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def env_allows_private() -> bool:
    """Whether `DREAMNODES_ALLOW_PRIVATE_URLS` is set to 1 (or true/yes)."""
    return os.environ.get(ENV_ALLOW_PRIVATE, "").strip().lower() in ("1", "true", "yes")


def origin_of(url: str | httpx.URL) -> Origin | None:
    """(scheme, host, port) with the default port filled in; None for a URL without a host."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
    except (httpx.InvalidURL, ValueError):
        return None
    if not parsed.host or parsed.scheme not in _DEFAULT_PORTS:
        return None
    return parsed.scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS[parsed.scheme]


def not_public_because(address: IPAddress) -> str | None:
    """Why `address` is not a public one ("loopback", "private"...), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = not_public_because(embedded)
            return None if reason is None else f"{reason} ({embedded} inside {address})"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("carrier-grade NAT", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's own address; the server part is a relay
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal in any numeric form resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class AddressGuard:
    """The rule for one run: public addresses only, plus trusted origins, or everything."""

    allow_private: bool = False
    trusted: frozenset[Origin] = frozenset()

    @classmethod
    def make(
        cls, *, allow_private_urls: bool = False, provider_url: str | None = None
    ) -> AddressGuard:
        """The guard for a run: public addresses, plus the origin of `provider_url`; every
        address with `allow_private_urls` or `DREAMNODES_ALLOW_PRIVATE_URLS=1`."""
        origin = origin_of(provider_url) if provider_url else None
        trusted = frozenset() if origin is None else frozenset({origin})
        return cls(bool(allow_private_urls) or env_allows_private(), trusted)

    async def check(self, url: httpx.URL, *, field: str, shown: str) -> IPAddress | None:
        """The address to connect to for `url`, checked; None when no check applies.

        Raises DreamError `invalid_input` (naming `field`) for an address that is not public,
        and `network_error` for a host that does not resolve. `shown` is the URL as errors
        may show it (no credentials, no query).
        """
        origin = origin_of(url)
        if self.allow_private or origin is None or origin in self.trusted:
            return None
        try:
            addresses = await resolve(url.host, origin[2])
        except (OSError, UnicodeError) as exc:
            raise DreamError(
                "network_error",
                f"{field}: cannot resolve the host of {shown} ({exc})",
                field=field,
                retryable=True,
            ) from None
        if not addresses:
            raise DreamError(
                "network_error", f"{field}: {shown} resolves to no address", field=field
            )
        for address in addresses:
            reason = not_public_because(address)
            if reason is not None:
                raise DreamError(
                    "invalid_input",
                    f"{field}: {shown} resolves to {address}, which is not a public address "
                    f"({reason}); downloads only reach public addresses and the provider's "
                    f"own origin; {OPT_IN}",
                    field=field,
                )
        return addresses[0]
