"""Downloads reach public addresses only, plus the provider's origin, or everything on opt-in."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dreamnodes.downloads import addresses
from dreamnodes.downloads.addresses import not_public_because
from dreamnodes.downloads.download import DownloadedFile, download, download_assets
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner

MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 200
PUBLIC_IP = "93.184.215.14"
FAKE_DNS = {
    "cdn.example": [PUBLIC_IP],
    "intranet.example": ["10.0.0.7"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": [PUBLIC_IP, "127.0.0.1"],  # one private answer is enough to refuse
}
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Made-up names resolve as FAKE_DNS says; numeric hosts go through the real getaddrinfo."""
    real = addresses.resolve

    async def resolve(host: str, port: int) -> list[addresses.IPAddress]:
        if host in FAKE_DNS:
            return [ipaddress.ip_address(a) for a in FAKE_DNS[host]]
        return await real(host, port)

    monkeypatch.setattr(addresses, "resolve", resolve)
    monkeypatch.delenv("DREAMNODES_ALLOW_PRIVATE_URLS", raising=False)


def mp4_server(seen: list[httpx.Request] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    return handler


def fetch(handler: Handler, url: str, directory: Path, **kwargs: Any) -> DownloadedFile:
    async def go() -> DownloadedFile:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await download(http, url, directory, **kwargs)

    return asyncio.run(go())


def refused(handler: Handler, url: str, directory: Path, **kwargs: Any) -> DreamError:
    with pytest.raises(DreamError) as info:
        fetch(handler, url, directory, **kwargs)
    return info.value


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- which addresses are public -----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "private"),
        ("240.0.0.1", "private"),
        ("198.18.0.1", "private"),  # benchmarking
        ("192.0.2.1", "private"),  # documentation
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo, client 10.0.0.1
    ],
)
def test_addresses_that_are_not_public(address: str, reason: str) -> None:
    found = not_public_because(ipaddress.ip_address(address))
    assert found is not None and found.startswith(reason), found


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses(address: str) -> None:
    assert not_public_because(ipaddress.ip_address(address)) is None


# --- refused before anything is sent --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/v.mp4",
        "http://2130706433/v.mp4",  # decimal
        "http://0x7f.1/v.mp4",  # hex, short
        "http://0x7f000001/v.mp4",
        "http://127.1/v.mp4",  # short
        "http://[::ffff:127.0.0.1]/v.mp4",  # IPv6-mapped
        "http://[::1]:8080/v.mp4",
        "http://localhost/v.mp4",
        "http://0/v.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/v.mp4",
        "http://192.168.1.10:8080/v.mp4",
        "http://100.64.0.1/v.mp4",
        "https://[fe80::1]/v.mp4",
        "http://[fc00::1]/v.mp4",
        "http://224.0.0.1/v.mp4",
        "http://intranet.example/v.mp4",
        "http://metadata.example/v.mp4",
        "http://mixed.example/v.mp4",
    ],
)
def test_private_addresses_are_refused_before_sending(tmp_path: Path, url: str) -> None:
    seen: list[httpx.Request] = []
    err = refused(mp4_server(seen), url, tmp_path)
    assert (err.code, err.field) == ("invalid_input", "url")
    assert "not a public address" in err.message
    assert "--allow-private-urls" in err.message
    assert "DREAMNODES_ALLOW_PRIVATE_URLS=1" in err.message
    assert seen == []
    assert files_in(tmp_path) == []


def test_an_octal_host_is_not_fetched(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    err = refused(mp4_server(seen), "http://0177.0.0.1/v.mp4", tmp_path)
    assert (err.code, err.field) == ("invalid_input", "url")
    assert seen == []


def test_the_refusal_never_shows_credentials_or_tokens(tmp_path: Path) -> None:
    err = refused(mp4_server(), "http://admin:hunter2@10.0.0.5/v.mp4?token=SIGNED", tmp_path)
    assert "hunter2" not in err.message and "admin" not in err.message
    assert "SIGNED" not in err.message
    assert "10.0.0.5" in err.message


def test_download_assets_names_the_asset_field(tmp_path: Path) -> None:
    generation = {"id": "g1", "assets": {"video": "http://169.254.169.254/v.mp4"}}

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(mp4_server())) as http:
            await download_assets(http, generation, tmp_path)

    with pytest.raises(DreamError) as info:
        asyncio.run(go())
    assert (info.value.code, info.value.field) == ("invalid_input", "assets.video")


# --- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location", ["http://127.0.0.1:6379/", "http://intranet.example/x", "http://[::1]/x"]
)
def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path, location: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": location})

    err = refused(handler, "https://cdn.example/v.mp4?sig=abc", tmp_path)
    assert (err.code, err.field) == ("invalid_input", "url")
    assert "redirected to" in err.message and "not a public address" in err.message
    assert [r.headers["host"] for r in seen] == ["cdn.example"]  # the private hop: never sent
    assert files_in(tmp_path) == []


def test_a_redirect_from_the_provider_origin_to_a_private_one_is_refused(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "http://127.0.0.1:9999/admin"})

    err = refused(
        handler,
        "http://127.0.0.1:8787/sandbox/assets/x.mp4",
        tmp_path,
        provider_url="http://127.0.0.1:8787/dream-machine/v1",
    )
    assert err.code == "invalid_input"
    assert [str(r.url) for r in seen] == ["http://127.0.0.1:8787/sandbox/assets/x.mp4"]


def test_a_redirect_to_a_public_address_is_followed(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "cdn.example":
            return httpx.Response(302, headers={"location": "https://8.8.8.8/v.mp4"})
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    result = fetch(handler, "https://cdn.example/v.mp4", tmp_path)
    assert Path(result.path).read_bytes() == MP4


# --- the connection goes to the address that was checked ----------------------------------


def test_the_request_goes_to_the_checked_address_under_its_own_name(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    fetch(mp4_server(seen), "https://cdn.example:8443/v.mp4?sig=1", tmp_path)
    (request,) = seen
    assert (request.url.host, request.url.port) == (PUBLIC_IP, 8443)
    assert request.url.query == b"sig=1"
    assert request.headers["host"] == "cdn.example:8443"
    assert request.extensions["sni_hostname"] == "cdn.example"  # TLS checks the name's cert
    assert request.headers["connection"] == "close"  # never shared with another name
    assert request.headers["accept-encoding"] == "identity"


def test_a_dns_answer_that_changes_after_the_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PUBLIC_IP, "127.0.0.1", "127.0.0.1"])

    async def rebinding(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address(next(answers))]

    monkeypatch.setattr(addresses, "resolve", rebinding)
    seen: list[httpx.Request] = []
    fetch(mp4_server(seen), "http://rebind.example/v.mp4", tmp_path)
    assert [r.url.host for r in seen] == [PUBLIC_IP]


# --- opting in, and the provider's own origin ------------------------------------------------


def test_the_python_argument_allows_private_addresses(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    url = "http://127.0.0.1:5000/v.mp4"
    result = fetch(mp4_server(seen), url, tmp_path, allow_private_urls=True)
    assert Path(result.path).read_bytes() == MP4
    assert [str(r.url) for r in seen] == [url]  # sent as given, no pinning


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("true", True), ("0", False)])
def test_the_environment_variable_allows_private_addresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool
) -> None:
    monkeypatch.setenv("DREAMNODES_ALLOW_PRIVATE_URLS", value)
    if allowed:
        fetch(mp4_server(), "http://10.0.0.5/v.mp4", tmp_path)
        assert files_in(tmp_path) == ["v.mp4"]
    else:
        assert refused(mp4_server(), "http://10.0.0.5/v.mp4", tmp_path).code == "invalid_input"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8787/sandbox/assets/x.mp4", True),
        ("http://127.0.0.1:8788/sandbox/assets/x.mp4", False),  # another port
        ("https://127.0.0.1:8787/sandbox/assets/x.mp4", False),  # another scheme
        ("http://localhost:8787/sandbox/assets/x.mp4", False),  # another host name
    ],
)
def test_only_the_provider_origin_itself_is_allowed(
    tmp_path: Path, url: str, allowed: bool
) -> None:
    provider = "http://127.0.0.1:8787/dream-machine/v1"
    if allowed:
        fetch(mp4_server(), url, tmp_path, provider_url=provider)
        assert files_in(tmp_path) == ["x.mp4"]
    else:
        assert refused(mp4_server(), url, tmp_path, provider_url=provider).field == "url"


def test_default_ports_are_the_same_origin(tmp_path: Path) -> None:
    fetch(mp4_server(), "http://10.0.0.5:80/a.mp4", tmp_path, provider_url="http://10.0.0.5/v1")
    fetch(mp4_server(), "https://10.0.0.5/b.mp4", tmp_path, provider_url="https://10.0.0.5:443")
    assert files_in(tmp_path) == ["a.mp4", "b.mp4"]


# --- a real server on loopback --------------------------------------------------------------


class Mp4Handler(http.server.BaseHTTPRequestHandler):
    """Serves MP4 bytes; `/hop?to=URL` redirects; records the Host header of every request."""

    def do_GET(self) -> None:
        self.server.hosts.append(self.headers["Host"])  # type: ignore[attr-defined]
        if self.path.startswith("/hop?to="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/hop?to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(MP4)))
        self.end_headers()
        self.wfile.write(MP4)

    def log_message(self, *args: Any) -> None:
        pass


class Served:
    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mp4Handler)
        self.server.hosts = []  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def hosts(self) -> list[str]:
        return self.server.hosts  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Served, Served]]:
    pair = (Served(), Served())
    try:
        yield pair
    finally:
        for served in pair:
            served.close()


def real(url: str, directory: Path, **kwargs: Any) -> DownloadedFile:
    async def go() -> DownloadedFile:
        async with httpx.AsyncClient(timeout=10) as http:
            return await download(http, url, directory, **kwargs)

    return asyncio.run(go())


def real_refused(url: str, directory: Path, **kwargs: Any) -> DreamError:
    with pytest.raises(DreamError) as info:
        real(url, directory, **kwargs)
    return info.value


def test_a_loopback_server_is_not_reached_by_default(
    servers: tuple[Served, Served], tmp_path: Path
) -> None:
    one, _ = servers
    for host in ("127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"):
        err = real_refused(f"http://{host}:{one.port}/v.mp4", tmp_path)
        assert (err.code, err.field) == ("invalid_input", "url"), host
    assert one.hosts == []
    assert files_in(tmp_path) == []


def test_a_loopback_server_is_reached_with_the_opt_in(
    servers: tuple[Served, Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, _ = servers
    real(f"{one.url}/a.mp4", tmp_path, allow_private_urls=True)
    monkeypatch.setenv("DREAMNODES_ALLOW_PRIVATE_URLS", "1")
    real(f"http://2130706433:{one.port}/b.mp4", tmp_path)
    assert files_in(tmp_path) == ["a.mp4", "b.mp4"]


def test_the_provider_origin_may_not_redirect_to_another_loopback_port(
    servers: tuple[Served, Served], tmp_path: Path
) -> None:
    provider, other = servers
    real(f"{provider.url}/ok.mp4", tmp_path, provider_url=f"{provider.url}/dream-machine/v1")
    err = real_refused(
        f"{provider.url}/hop?to={other.url}/secret.mp4",
        tmp_path,
        provider_url=f"{provider.url}/dream-machine/v1",
    )
    assert err.code == "invalid_input" and "redirected to" in err.message
    assert len(provider.hosts) == 2 and other.hosts == []
    assert files_in(tmp_path) == ["ok.mp4"]


def test_the_connection_is_made_to_the_checked_address(
    servers: tuple[Served, Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`media.example` exists only in our resolver: the download succeeds only because the
    connection goes to the address the guard checked (here loopback, passed off as public)."""
    one, _ = servers
    monkeypatch.setitem(FAKE_DNS, "media.example", ["127.0.0.1"])
    monkeypatch.setattr(addresses, "not_public_because", lambda address: None)
    result = real(f"http://media.example:{one.port}/v.mp4", tmp_path)
    assert Path(result.path).read_bytes() == MP4
    assert one.hosts == [f"media.example:{one.port}"]


# --- the download_asset node --------------------------------------------------------------


def node(base_url: str, params: dict[str, Any]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Runner(api_key="k", base_url=base_url) as runner:
            return await runner.run("download_asset", params)

    return asyncio.run(go())


def test_download_asset_allows_the_runs_provider_origin_only(
    servers: tuple[Served, Served], tmp_path: Path
) -> None:
    provider, other = servers
    base = f"{provider.url}/dream-machine/v1"
    saved = node(base, {"url": f"{provider.url}/v.mp4", "directory": str(tmp_path)})
    assert Path(saved["path"]).read_bytes() == MP4
    with pytest.raises(DreamError) as info:
        node(base, {"url": f"{other.url}/v.mp4", "directory": str(tmp_path)})
    assert (info.value.code, info.value.field) == ("invalid_input", "url")
    assert "--allow-private-urls" in info.value.message
    assert other.hosts == []


def test_download_asset_follows_the_environment_opt_in(
    servers: tuple[Served, Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, other = servers
    monkeypatch.setenv("DREAMNODES_ALLOW_PRIVATE_URLS", "1")
    saved = node(provider.url, {"url": f"{other.url}/v.mp4", "directory": str(tmp_path)})
    assert Path(saved["path"]).name == "v.mp4"


# --- TLS: the certificate is still checked against the URL's name -----------------------------


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize(("cert_name", "works"), [("media.example", True), ("evil.example", False)])
def test_a_pinned_https_request_checks_the_certificate_of_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cert_name: str, works: bool
) -> None:
    cert, key = self_signed(tmp_path, cert_name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mp4Handler)
    server.hosts = []  # type: ignore[attr-defined]
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setitem(FAKE_DNS, "media.example", ["127.0.0.1"])
    monkeypatch.setattr(addresses, "not_public_because", lambda address: None)

    async def go() -> DownloadedFile:
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trust, timeout=10) as http:
            return await download(http, f"https://media.example:{port}/v.mp4", tmp_path / "out")

    try:
        if works:
            assert Path(asyncio.run(go()).path).read_bytes() == MP4
            assert server.hosts == [f"media.example:{port}"]  # type: ignore[attr-defined]
        else:
            with pytest.raises(DreamError) as info:
                asyncio.run(go())
            assert info.value.code == "network_error" and "CERTIFICATE" in info.value.message
            assert files_in(tmp_path / "out") == []
    finally:
        server.shutdown()
        server.server_close()
