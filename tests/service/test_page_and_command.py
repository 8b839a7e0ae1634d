"""The page's sign-in and files, and the `dreamnodes serve` command itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from dreamnodes.service.app import Service
from service.support import TOKEN


def test_the_page_signs_in_once_with_a_strict_http_only_cookie(
    served: tuple[Service, str],
) -> None:
    url = served[1]
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "<title>dreamnodes serve</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(url + "/static/app.js").status_code == 200
    assert "http" not in httpx.get(url + "/static/index.html").text.split("<body>")[1]
    assert httpx.post(url + "/v1/session", json={"token": "wrong"}).status_code == 401
    with httpx.Client(base_url=url) as browser:
        signed = browser.post("/v1/session", json={"token": TOKEN})
        assert signed.status_code == 200
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert browser.get("/v1/runs").status_code == 200
        # a change made with the cookie alone needs the page's own header (no cross-site form)
        bare = browser.post("/v1/nodes/get_credits/runs", json={"params": {}})
        assert bare.status_code == 401
        page_post = browser.post(
            "/v1/nodes/get_credits/runs",
            json={"params": {}},
            headers={"X-Requested-With": "dreamnodes", "Prefer": "wait=10"},
        )
        assert page_post.status_code == 200, page_post.text
        browser.delete("/v1/session")
        browser.cookies.clear()
        assert browser.get("/v1/runs").status_code == 401


SCALED = ("--time-scale", "100")


def test_serve_prints_its_labelled_lines_and_stops_on_sigterm(tmp_path: object) -> None:
    env = {**os.environ, "DREAMNODES_STORE": f"{tmp_path}/runs.sqlite3"}
    env.pop("DREAMNODES_SERVE_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dreamnodes.cli", "serve", "--sandbox", "--port", "0", *SCALED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while "signing_secret" not in lines:
            assert time.monotonic() < deadline and process.poll() is None
            label, _, value = process.stdout.readline().strip().partition(": ")
            lines[label] = value
        assert lines["luma"].startswith("http://127.0.0.1:")
        assert lines["serve"].startswith("http://127.0.0.1:")
        auth = {"Authorization": f"Bearer {lines['token']}"}
        assert httpx.get(lines["serve"] + "/v1/nodes").status_code == 401
        assert httpx.get(lines["serve"] + "/v1/nodes", headers=auth).status_code == 200
        # The built-in sandbox runs on --time-scale's clock too: a video dreams 2.5 s / 100.
        run = httpx.post(
            lines["serve"] + "/v1/nodes/dream_machine/runs",
            json={"params": {"prompt": "A tiger walking in snow"}, "wait": "poll"},
            headers={**auth, "Prefer": "wait=60"},
            timeout=90,
        ).json()
        assert run["status"] == "succeeded", run
        assert run["seconds"] < 2.0, run  # unscaled, the sandbox alone takes 2.5 s
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
