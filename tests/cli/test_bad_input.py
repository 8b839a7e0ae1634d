"""Bad input on each node: exit 2, an error naming the field, one stderr line, nothing sent."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from dreamnodes.cli import main

from .conftest import GEN_ID, CountingServer, created

GOOD_ID = GEN_ID
# (node, params, context or None, the field the error must name)
CASES: list[tuple[str, dict[str, object], dict[str, object] | None, str]] = [
    # dream_machine
    ("dream_machine", {"model": "Ray 9", "prompt": "a fox"}, None, "model"),
    (
        "dream_machine",
        {"model": "ray-2", "prompt": "a fox", "aspect_ratio": "5:1"},
        None,
        "aspect_ratio",
    ),
    ("dream_machine", {"model": "ray-2", "prompt": 42}, None, "prompt"),
    ("dream_machine", {"model": "ray-2", "prompt": "a fox", "loop": "perhaps"}, None, "loop"),
    (
        "dream_machine",
        {"model": "ray-2", "prompt": "a fox", "start_image_url": "not a url"},
        None,
        "start_image_url",
    ),
    (
        "dream_machine",
        {"model": "ray-2", "prompt": "a fox", "start_image_url": "ftp://x.example/a.jpg"},
        None,
        "start_image_url",
    ),
    ("dream_machine", {"model": "Ray 2 (best)"}, None, "prompt"),  # nothing to generate from
    (
        "dream_machine",
        {"model": "ray-2", "prompt": "{{trigger.prompt}}"},
        {"trigger": {}},
        "prompt",
    ),  # missing path
    (
        "dream_machine",
        {"model": "ray-2", "prompt": "{{trigger.prompt"},
        {"trigger": {"prompt": "x"}},
        "prompt",
    ),
    (
        "dream_machine",
        {
            "model": "ray-2",
            "prompt": "a fox",
            "loop": "Yes",
            "end_image_url": "https://x.example/e.jpg",
        },
        None,
        "loop",
    ),
    ("dream_machine", {"prompt": "a fox", "model": "Ray 1.6", "duration": "9s"}, None, "duration"),
    ("dream_machine", {"model": "ray-2", "prompt": "a fox", "colour": "red"}, None, "colour"),
    # get_generation
    ("get_generation", {}, None, "generation_id"),
    ("get_generation", {"generation_id": "../x"}, None, "generation_id"),
    ("get_generation", {"generation_id": "a/b"}, None, "generation_id"),
    ("get_generation", {"generation_id": 7}, None, "generation_id"),
    ("get_generation", {"generation_id": "{{up.id}}"}, {"up": {}}, "generation_id"),
    # list_generations
    ("list_generations", {"limit": 0}, None, "limit"),
    ("list_generations", {"limit": 101}, None, "limit"),
    ("list_generations", {"limit": "many"}, None, "limit"),
    ("list_generations", {"offset": -1}, None, "offset"),
    ("list_generations", {"return_all": "sometimes"}, None, "return_all"),
    # delete_generation
    ("delete_generation", {}, None, "generation_id"),
    ("delete_generation", {"generation_id": "../../etc/passwd"}, None, "generation_id"),
    ("delete_generation", {"generation_id": "a/b"}, None, "generation_id"),
    ("delete_generation", {"generation_id": "{{ }}"}, {}, "generation_id"),
    # extend_video
    ("extend_video", {"model": "ray-2", "prompt": "more"}, None, "video"),  # the video to extend
    (
        "extend_video",
        {"model": "ray-2", "generation_id": "a/b", "prompt": "more"},
        None,
        "generation_id",
    ),
    (
        "extend_video",
        {"model": "ray-2", "generation_id": GOOD_ID, "direction": "sideways"},
        None,
        "direction",
    ),
    (
        "extend_video",
        {"model": "ray-2", "generation_id": GOOD_ID, "image_url": "https//x"},
        None,
        "image_url",
    ),
    (
        "extend_video",
        {
            "model": "ray-2",
            "generation_id": GOOD_ID,
            "to_generation_id": GOOD_ID,
            "image_url": "https://x.example/a.jpg",
        },
        None,
        "image_url",
    ),
    (
        "extend_video",
        {
            "model": "ray-2",
            "generation_id": GOOD_ID,
            "to_generation_id": GOOD_ID,
            "direction": "backward",
        },
        None,
        "direction",
    ),
    (
        "extend_video",
        {"model": "ray-2", "generation_id": GOOD_ID, "direction": "backward", "loop": "Yes"},
        None,
        "loop",
    ),
    (
        "extend_video",
        {"model": "ray-2", "generation_id": GOOD_ID, "to_generation_id": "../x"},
        None,
        "to_generation_id",
    ),
]


@pytest.mark.parametrize(
    ("node", "params", "context", "field"),
    CASES,
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)],
)
@pytest.mark.usefixtures("env")
def test_bad_input_exits_2_and_sends_nothing(
    node: str,
    params: dict[str, object],
    context: dict[str, object] | None,
    field: str,
    serve: Callable[..., CountingServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = serve(created)
    argv = ["run", node, "--base-url", server.url, "--params", json.dumps(params)]
    if context is not None:
        argv += ["--context", json.dumps(context)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["code"] in ("invalid_input", "template_error")
    assert error["field"] == field, error
    assert captured.err.startswith("dreamnodes: ") and captured.err.count("\n") == 1, captured.err
    assert error["message"] in captured.err
    if error["code"] == "invalid_input":
        assert field in error["message"]
    else:  # a template error quotes the broken template
        assert "{{" in error["message"]
    assert "Traceback" not in captured.err
    assert server.count == 0


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "argv",
    [
        ["--params", "{not json"],
        ["--params", "[1, 2]"],
        ["--context", "[1]"],
        ["--context", '"text"'],
        ["--set", "novalue"],
        ["--max-attempts", "0"],
        ["--max-attempts", "6"],
        ["--wait", "forever"],
    ],
)
def test_bad_arguments_exit_2_and_send_nothing(
    argv: list[str], serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(created)
    code = main(
        [
            "run",
            "get_generation",
            "--base-url",
            server.url,
            "--set",
            f"generation_id={GEN_ID}",
            *argv,
        ]
    )
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "error" in json.loads(captured.out)
    assert "Traceback" not in captured.err
    assert server.count == 0


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("value", ["0", "6"])
def test_max_attempts_out_of_range_names_it(
    value: str, serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(created)
    assert (
        main(
            [
                "run",
                "get_generation",
                "--base-url",
                server.url,
                "--params",
                json.dumps({"generation_id": GEN_ID}),
                "--max-attempts",
                value,
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["field"] == "max_attempts"
    assert "max_attempts" in captured.err
    assert server.count == 0


@pytest.mark.usefixtures("env")
def test_good_input_does_reach_the_server(
    serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """The counting server does count: the same command with a good id sends one request."""
    server = serve(created)
    assert (
        main(
            [
                "run",
                "get_generation",
                "--base-url",
                server.url,
                "--params",
                json.dumps({"generation_id": GEN_ID}),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["id"] == GEN_ID
    assert server.count == 1
    assert server.requests[0].path.endswith(f"/generations/{GEN_ID}")


def test_account_limit_flags_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from dreamnodes.cli import main

    code = main(["run", "get_credits", "--no-store", "--video-per-minute", "0"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 2
    assert error["field"] == "video_per_minute"
    assert error["message"] == "video_per_minute: must be at least 1, got 0"


def test_an_unexpected_failure_is_still_one_json_error_and_no_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dreamnodes.cli import describe, main

    def broken(*, as_json: bool) -> int:
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(describe, "list_nodes", broken)
    monkeypatch.delenv("DREAMNODES_DEBUG", raising=False)
    assert main(["nodes"]) == 1
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert "internal error (RuntimeError: something nobody planned for)" in error["message"]
    assert "Traceback" not in err and err.startswith("dreamnodes: ")
