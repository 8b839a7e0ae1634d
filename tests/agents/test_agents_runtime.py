"""The luma_agents provider end to end: every create node's schema examples against the sandbox
with waiting and downloads (decoded media of the asked duration and aspect), local files
uploaded once and referred to by file id, a lost create never resent, a loop within both limits,
expired output URLs refreshed, and the form's cross-field rules checked before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import DROP, FakeServer, Request, Response, json_response

from dreamnodes.api.limits import Limits
from dreamnodes.catalog.package import load_package
from dreamnodes.errors import DreamError
from dreamnodes.execution import uploads
from dreamnodes.execution.runner import Runner
from dreamnodes.execution.saving import save_assets
from dreamnodes.preparation.prepare import estimate, prepare
from dreamnodes.runlog.recorded import run_items, run_recorded
from dreamnodes.runlog.store import RunStore
from dreamnodes.sandbox import Sandbox, SandboxConfig
from dreamnodes.sandbox.media import probe_video

FRAME = Path(__file__).resolve().parent / "frame.png"
PROVIDER = "luma_agents"
SCALE = 40.0
CREATE_NODES = [
    n.id for n in load_package().nodes.values() if n.kind == "create" and PROVIDER in n.providers
]
RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4, "21:9": 21 / 9}


@pytest.fixture(autouse=True)
def _fresh_uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DREAMNODES_UPLOAD_CACHE", str(tmp_path / "uploads.json"))
    uploads.forget()
    yield
    uploads.forget()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(port=0, time_scale=SCALE, limits=False)) as sb:
        yield sb


def _runner(sandbox: Sandbox, **more: Any) -> Runner:
    return Runner(
        api_key="sandbox-key",
        provider=PROVIDER,
        base_url=sandbox.luma_agents_url,
        poll_scale=SCALE,
        allow_private_urls=True,
        **more,
    )


def _mp4_info(path: str) -> Any:
    return probe_video(Path(path).read_bytes())


@pytest.mark.parametrize("node_id", CREATE_NODES)
def test_schema_examples_run_waited_and_downloaded(
    node_id: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    examples = load_package().node(node_id).input_schema["examples"]

    async def go() -> None:
        async with _runner(sandbox) as runner:
            for n, example in enumerate(examples):
                params = dict(example)
                if "source" in params:  # a generation of the right kind to start from
                    maker = "ray_video" if node_id.startswith("ray_") else "uni_image"
                    source = await runner.run(
                        maker,
                        {"prompt": "A quiet harbour", "resolution": "360p"}
                        if maker == "ray_video"
                        else {"prompt": "A quiet harbour"},
                        wait="poll",
                    )
                    params["source"] = source["id"]
                out = await runner.run(
                    node_id, params, wait="poll", download_dir=str(tmp_path / str(n))
                )
                assert out["state"] == "completed" and out["provider"] == PROVIDER
                files = out["files"]
                if node_id.startswith("ray_"):
                    info = _mp4_info(files["video"])
                    assert info.fps == 24.0
                    if node_id == "ray_video":
                        seconds = int(str(params.get("duration", "5s")).rstrip("s"))
                        assert abs(info.duration_s - seconds) < 0.1
                    ratio = params.get("aspect_ratio", "16:9")
                    if node_id != "ray_edit_video":
                        assert abs(info.width / info.height - RATIOS[ratio]) < 0.05
                else:
                    from PIL import Image

                    with Image.open(files["image"]) as image:
                        image.load()
                        if "aspect_ratio" in params:
                            w, h = (float(x) for x in params["aspect_ratio"].split(":"))
                            assert abs(image.width / image.height - w / h) < 0.05
                        if node_id == "uni_layers":
                            assert image.mode == "RGBA" and out["layers"]

    asyncio.run(go())


def test_a_local_image_becomes_one_file_id_upload(sandbox: Sandbox) -> None:
    async def go() -> list[dict[str, Any]]:
        async with _runner(sandbox) as runner:
            outs = []
            for _ in range(2):  # the same bytes twice: uploaded once
                outs.append(
                    await runner.run(
                        "ray_video",
                        {
                            "prompt": "The scene comes alive",
                            "resolution": "360p",
                            "start_frame": str(FRAME),
                        },
                        wait="poll",
                    )
                )
            return outs

    before = len([r for r in sandbox.request_log() if r[0] == "POST" and r[1].endswith("/files")])
    outs = asyncio.run(go())
    made = {g["id"]: g for g in sandbox.agents_generations()}
    file_ids = {made[o["id"]]["request"]["video"]["start_frame"].get("file_id") for o in outs}
    assert len(file_ids) == 1 and None not in file_ids
    posted = [r for r in sandbox.request_log() if r[0] == "POST" and r[1].endswith("/files")]
    assert len(posted) - before == 1
    assert json.loads((Path(uploads.cache_file() or "")).read_text())  # remembered on disk


def test_upload_file_node_and_bytes_from_python(sandbox: Sandbox) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with _runner(sandbox) as runner:
            node = await runner.run("upload_file", {"path": str(FRAME)})
            again = await uploads.upload_bytes(runner, FRAME.read_bytes(), "image/png")
            return node, again

    node, again = asyncio.run(go())
    assert node["state"] == "ready" and node["ref"] == "file:" + node["id"]
    assert again["id"] == node["id"]


def test_a_lost_create_is_sent_once_and_ends_unknown_outcome(
    fake_server: Any, tmp_path: Path
) -> None:
    creates: list[bytes] = []

    def handler(request: Request) -> Response:
        if request.method == "POST" and request.path.endswith("/generations"):
            creates.append(request.body)
            return DROP  # accepted, but the answer never arrives
        return json_response(404, b'{"detail": "Generation not found"}')

    server: FakeServer = fake_server(handler)

    async def go() -> None:
        async with Runner(
            api_key="k-agents-0001",
            provider=PROVIDER,
            base_url=server.base_url,
            retry={"max_attempts": 5, "first_delay": 0.01},
        ) as runner:
            await run_recorded(
                runner,
                RunStore(str(tmp_path / "runs.sqlite3")),
                "ray_video",
                {"prompt": "A tiger walking in snow"},
                wait="poll",
            )

    with pytest.raises(DreamError) as caught:
        asyncio.run(go())
    assert caught.value.code == "unknown_outcome"
    assert len(creates) == 1


def test_a_loop_of_ray_videos_keeps_within_both_limits() -> None:
    scale = 60.0
    config = SandboxConfig(port=0, time_scale=scale, agents_per_minute=6, agents_concurrent=3)
    items = [{"n": n} for n in range(10)]
    with Sandbox(config) as sb:

        async def go() -> list[Any]:
            limits = Limits(agents_per_minute=6, agents_concurrent=3).scaled(scale)
            async with Runner(
                api_key="loop-key",
                provider=PROVIDER,
                base_url=sb.luma_agents_url,
                limits=limits,
                poll_scale=scale,
                retry={"max_attempts": 1},
            ) as runner:
                params = {"prompt": "Wave {{item.n}}", "resolution": "360p", "wait": "poll"}
                return [r async for r in run_items(runner, None, "ray_video", params, items)]

        results = asyncio.run(go())
        statuses = [r[2] for r in sb.request_log()]
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    assert 429 not in statuses


def test_an_expired_output_url_is_refreshed_with_a_get(sandbox: Sandbox, tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with _runner(sandbox) as runner:
            out = await runner.run("uni_image", {"prompt": "A red kite"}, wait="poll")
            url = out["assets"]["image"]
            out["assets"]["image"] = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
            out["files"] = await save_assets(runner, out, str(tmp_path))
            return out

    seen = len(sandbox.request_log())
    out = asyncio.run(go())
    assert Path(out["files"]["image"]).stat().st_size > 100
    log = sandbox.request_log()[seen:]
    refused = [n for n, r in enumerate(log) if "/outputs/" in r[1] and r[2] == 403]
    assert refused, log  # the stale URL was refused like S3's, then a GET minted a fresh one
    assert any(r[0] == "GET" and "/generations/" in r[1] for r in log[refused[0] :])


@pytest.mark.parametrize(
    ("node_id", "params", "field"),
    [
        ("ray_video", {"loop": True, "duration": "10s"}, "loop"),
        ("ray_video", {"loop": True, "hdr": True, "resolution": "720p"}, "loop"),
        ("ray_video", {"exr_export": True}, "exr_export"),
        ("ray_video", {"hdr": True, "resolution": "540p"}, "hdr"),
        (
            "ray_video",
            {"keyframes": [{"image": "a.png", "at": 0}], "end_frame": "b.png"},
            "keyframes",
        ),
        ("ray_video", {"keyframes": [{"image": "a.png", "at": "6s"}]}, "keyframes"),
        (
            "ray_video",
            {"keyframes": [{"image": "a.png", "at": "1s"}, {"image": "b.png", "at": 24}]},
            "keyframes",
        ),
        ("ray_video", {"aspect_ratio": "3:1"}, "aspect_ratio"),
        (
            "ray_reframe_video",
            {"source": "x.mp4", "aspect_ratio": "9:16", "resolution": "1080p"},
            "resolution",
        ),
        ("ray_edit_video", {"source": "x.mp4", "source_seconds": 19}, "source_seconds"),
        ("uni_image", {"reference_images": ["a.png"] * 10}, "reference_images"),
        ("uni_image", {"aspect_ratio": "21:9"}, "aspect_ratio"),
    ],
)
def test_cross_field_rules_are_checked_before_sending(
    node_id: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(DreamError) as caught:
        prepare(node_id, {"prompt": "A tiger walking in snow", **params}, provider=PROVIDER)
    assert (caught.value.code, caught.value.field) == ("invalid_input", field)


def test_keyframes_land_on_the_24_fps_grid() -> None:
    keyframes = [
        {"image": "https://x.test/a.jpg", "at": "0%"},
        {"image": "file:abc", "at": "2.5s"},
        {"image": "generation:0f0f", "at": 200},
        {"image": "https://x.test/b.jpg", "at": "100%"},
    ]
    body = prepare(
        "ray_video",
        {"prompt": "A tiger", "duration": "10s", "keyframes": keyframes},
        provider=PROVIDER,
    ).request
    assert body is not None and body.json is not None
    assert body.json["video"]["keyframe_indexes"] == [0, 60, 200, 240]
    assert body.json["video"]["keyframes"][1:3] == [{"file_id": "abc"}, {"generation_id": "0f0f"}]


def test_dry_run_prices_say_which_figures_are_third_party() -> None:
    hdr = estimate(
        "ray_video",
        {"prompt": "A tiger", "resolution": "1080p", "hdr": True, "exr_export": True},
        provider=PROVIDER,
    )
    assert hdr["estimate_usd"] == 3.6 and "third-party" in hdr["estimate_note"]
    refs = estimate(
        "uni_image",
        {"model": "uni-1", "prompt": "A tiger", "reference_images": ["https://x.test/a.jpg"] * 9},
        provider=PROVIDER,
    )
    assert refs["estimate_usd"] == 0.0674
    assert estimate("uni_layers", {"source": "file:x"}, provider=PROVIDER)["estimate_usd"] is None
