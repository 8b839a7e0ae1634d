"""The page as a person uses it, in a real headless Chromium (Debian's `chromium` package).

`dreamnodes serve`'s app on a free loopback port in front of the in-process sandbox: sign in
with the token, see a finished run's video play in the run log, retry a failed run with its
button, fill a node's form drawn from its schema and follow the run to its video. Driven by
Playwright's Python package against the system Chromium (no browser download); when either
is missing, every test here skips and says which.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from dreamnodes.sandbox import Sandbox
from dreamnodes.service.app import Service
from service.support import TOKEN

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

RUNS = "/v1/nodes/dream_machine/runs"
PARAMS = {"model": "ray-flash-2", "prompt": "A tiger walking in snow"}
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


def _chromium() -> str | None:
    """The system Chromium: $DREAMNODES_CHROMIUM, else Debian's `chromium` on the PATH."""
    found = os.environ.get("DREAMNODES_CHROMIUM") or shutil.which("chromium")
    return found if found and os.access(found, os.X_OK) else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium: apt-get install chromium (or set DREAMNODES_CHROMIUM)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as driver:
        try:
            launched = driver.chromium.launch(executable_path=executable, args=ARGS)
        except Error as error:
            pytest.skip(f"Chromium at {executable} did not start: {error.message[:300]}")
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, served: tuple[Service, str]) -> Iterator[Page]:
    """A fresh browser profile (no cookie) on the page, signed in with the token."""
    context = browser.new_context(base_url=served[1])
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto("/")
    tab.get_by_label("Token").fill(TOKEN)
    tab.get_by_role("button", name="Sign in").click()
    tab.locator("#log").wait_for(state="visible")
    try:
        yield tab
    finally:
        context.close()
    assert not problems, f"script errors on the page: {problems}"


@pytest.fixture
def api(served: tuple[Service, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served[1], headers=headers, timeout=60) as client:
        yield client


def _plays(page: Page, video: str) -> dict[str, Any]:
    """Wait until the <video> has loaded its metadata (it decodes); its state and duration."""
    page.wait_for_function(
        "(sel) => { const v = document.querySelector(sel);"
        " return v && v.readyState >= 1 && v.duration > 0; }",
        arg=video,
        timeout=TIMEOUT_MS,
    )
    state: dict[str, Any] = page.eval_on_selector(
        video,
        "v => ({src: v.currentSrc, readyState: v.readyState, duration: v.duration,"
        " error: v.error && v.error.code})",
    )
    return state


def test_sign_in_asks_for_the_token_and_refuses_a_wrong_one(
    browser: Browser, served: tuple[Service, str]
) -> None:
    context = browser.new_context(base_url=served[1])
    context.set_default_timeout(TIMEOUT_MS)
    try:
        tab = context.new_page()
        tab.goto("/")
        tab.locator("#sign-in").wait_for(state="visible")
        assert tab.locator("#log").is_hidden()
        tab.get_by_label("Token").fill("not-the-token")
        tab.get_by_role("button", name="Sign in").click()
        tab.get_by_text("Not this server's token.").wait_for()
        tab.get_by_label("Token").fill(TOKEN)
        tab.get_by_role("button", name="Sign in").click()
        tab.locator("#log").wait_for(state="visible")
        assert tab.locator("#sign-in").is_hidden()
        cookies = context.cookies()
        assert [c["name"] for c in cookies] == ["dreamnodes_session"]
        assert all(TOKEN not in c["value"] and c["httpOnly"] for c in cookies)
        tab.reload()  # the session outlives the page
        tab.locator("#log").wait_for(state="visible")
    finally:
        context.close()


def test_the_run_log_shows_a_finished_runs_video_playing(page: Page, api: httpx.Client) -> None:
    run = api.post(
        RUNS, json={"params": PARAMS, "wait": "poll"}, headers={"Prefer": "wait=30"}
    ).json()
    assert run["status"] == "succeeded", run
    row = page.locator(f"#run-{run['id']}[data-status=succeeded]")
    row.wait_for()  # the live refresh brings it in
    assert row.locator(".status").inner_text() == "succeeded"
    assert row.locator("td").nth(1).inner_text() == "dream_machine"
    assert row.locator("button.retry").count() == 0
    state = _plays(page, f"#run-{run['id']} video")
    assert state["src"] == run["output"]["assets"]["video"]
    assert state["duration"] > 0 and state["error"] is None


def test_a_failed_runs_retry_button_completes_it_with_one_generation(
    page: Page, api: httpx.Client, sandbox: Sandbox
) -> None:
    before = len(sandbox.generations())
    failed = api.post(
        RUNS,
        json={"params": PARAMS, "wait": "poll", "timeout": 0.05},
        headers={"Prefer": "wait=30"},
    ).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "wait_timeout", failed
    row = page.locator(f"#run-{failed['id']}[data-status=failed]")
    row.wait_for()
    assert row.locator(".error").inner_text() == failed["error"]["message"]
    # A retry with the recorded tiny timeout finds the generation done (as `runs retry` would).
    deadline = time.monotonic() + 20
    while {g["id"]: g for g in sandbox.generations()}[failed["generation_id"]]["state"] != (
        "completed"
    ):
        assert time.monotonic() < deadline, "the sandbox did not finish the generation"
        time.sleep(0.05)
    row.get_by_role("button", name="Retry").click()
    # The retry is a run of its own (retry_of the failed one) that continues its generation.
    page.wait_for_function(
        "(id) => [...document.querySelectorAll('#runs tbody tr')].some((r) =>"
        " r.dataset.retryOf === id && r.dataset.status === 'succeeded')",
        arg=failed["id"],
        timeout=TIMEOUT_MS,
    )
    retried = page.locator(f"#runs tbody tr[data-retry-of='{failed['id']}']")
    assert retried.count() == 1
    retried_id = (retried.get_attribute("id") or "").removeprefix("run-")
    run = api.get(f"/v1/runs/{retried_id}").json()
    assert run["status"] == "succeeded" and run["output"]["state"] == "completed"
    assert run["generation_id"] == failed["generation_id"]
    assert len(sandbox.generations()) == before + 1
    _plays(page, f"#run-{retried_id} video")


def test_a_nodes_form_from_its_schema_starts_a_run_followed_to_its_video(
    page: Page, sandbox: Sandbox
) -> None:
    before = len(sandbox.generations())
    page.get_by_label("Start a run").select_option(value="dream_machine")
    page.locator("#form-page").wait_for(state="visible")
    model = page.locator("#field-model")
    labels = model.locator("option").all_inner_texts()
    assert "Ray 2 (best)" in labels and "ray-2" not in labels
    assert model.locator("option:checked").inner_text() == "Ray 2 (best)"  # the default
    assert page.get_by_label("Aspect Ratio").locator("option:checked").inner_text() != ""
    assert page.locator("label[for=field-prompt]").inner_text().startswith("Prompt")
    model.select_option(label="Ray 2 Flash")
    page.get_by_label("Prompt").fill("A paper boat on a river")
    page.get_by_role("button", name="Run").click()
    status = page.locator("#form-run .run-status")
    status.wait_for()
    page.wait_for_function(
        "() => /: succeeded$/.test(document.querySelector('#form-run .run-status').textContent)",
        timeout=TIMEOUT_MS,
    )
    state = _plays(page, "#form-run video")
    assert state["duration"] > 0
    made = sandbox.generations()[before:]
    assert len(made) == 1
    request = made[0].get("request") or {}
    assert request.get("prompt") == "A paper boat on a river"
    assert request.get("model") == "ray-flash-2"


def test_a_rule_broken_in_the_form_is_shown_by_its_field(page: Page) -> None:
    page.goto("/#node/dream_machine")
    page.locator("#form-page").wait_for(state="visible")
    page.get_by_role("button", name="Run").click()  # no prompt
    message = page.locator("[data-field=prompt] .field-error")
    deadline = time.monotonic() + 10
    while not message.inner_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "prompt" in message.inner_text().lower()
    assert page.locator("#form-run").inner_text() == ""
