"""The cassette scenarios of every node: data only, recorded against the sandbox.

Adding a node's scenarios
-------------------------
1. Add an entry to ``SCENARIOS`` below: ``{node_id: {scenario_name: {"steps": [step, ...]}}}``.
2. Record: ``.venv/bin/python tests/record_cassettes.py <node_id>`` (starts the sandbox in-process
   on 127.0.0.1:8787, plays every scenario of that node and writes
   ``cassettes/<node_id>/<scenario_name>.yaml``, overwriting; no key or network needed).
3. Run ``.venv/bin/pytest tests/test_nodes.py``: every node in manifest.json is picked up, and a
   node with no cassette (other than a local/trigger node) fails ``test_cassette_exists``.
4. Commit the scenario and its cassettes together.

A step is a node call, played through ``dreamnodes.execution.runner.Runner`` in order:

    {"node": "dream_machine",          # any node id (setup steps may be other nodes)
     "params": {...},                  # the node's params; templates allowed
     "context": {...},                 # optional; `steps` is added (see below)
     "wait": "poll" | "none",          # optional, default "none"
     "provider": "luma" | "pixazo",    # optional, default "luma"
     "download": true,                 # optional: download the assets (the body goes in the
                                       #   cassette: keep it to one small video)
     "expect": {...},                  # optional: values the output must contain (a subset,
                                       #   templates allowed, lists compared whole)
     "error": "not_found"}             # optional: the step must fail with this DreamError code

Each step's context is its own ``context`` plus ``steps``: the outputs of the earlier steps, so
``"generation_id": "{{steps[0].id}}"`` refers to what step 0 made. Ids, dates and asset URLs in
the cassettes are whatever the sandbox gave when recording; a replay gets the same answers, so
later steps template the same values. ``test_nodes.py`` also checks, for every step, that the
request the node maps (``dreamnodes.preparation.prepare.prepare(...).request``) equals the
recorded one, and for waited creates that the output is completed with an asset URL.

A scenario whose steps use a node that is not in manifest.json yet is skipped by the recorder
and by the tests (it is recorded once that node exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROMPT = "A tiger walking in snow"

# A still image made by the sandbox (the sandbox only fetches its own assets: no internet).
_IMAGE: dict[str, Any] = {
    "node": "generate_image",
    "params": {
        "model": "photon-flash-1",
        "prompt": "A snowy forest at dawn",
        "aspect_ratio": "16:9",
    },
    "wait": "poll",
}


def _video(prompt: str, wait: str = "poll") -> dict[str, Any]:
    return {
        "node": "dream_machine",
        "params": {"model": "ray-flash-2", "prompt": prompt, "resolution": "540p"},
        "wait": wait,
    }


SCENARIOS: dict[str, dict[str, dict[str, Any]]] = {
    "dream_machine": {
        # The mission's own command: labels, a template, "No", waited, downloaded (the one MP4).
        "text_to_video": {
            "steps": [
                {
                    "node": "dream_machine",
                    "params": {
                        "model": "Ray 2 (best)",
                        "prompt": "{{trigger.prompt}}",
                        "loop": "No",
                    },
                    "context": {"trigger": {"prompt": PROMPT}},
                    "wait": "poll",
                    "download": True,
                    "expect": {"state": "completed", "generation_type": "video", "model": "ray-2"},
                }
            ]
        },
        "queued_without_wait": {
            "steps": [
                {
                    "node": "dream_machine",
                    "params": {"model": "ray-flash-2", "prompt": PROMPT, "aspect_ratio": "9:16"},
                    "expect": {"state": "queued", "model": "ray-flash-2"},
                }
            ]
        },
        "loop": {
            "steps": [
                {
                    "node": "dream_machine",
                    "params": {
                        "model": "Ray 2 Flash",
                        "prompt": "Waves rolling in",
                        "loop": "Yes",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed", "request": {"loop": True}},
                }
            ]
        },
        "concepts": {
            "steps": [
                {
                    "node": "dream_machine",
                    "params": {
                        "model": "ray-2",
                        "prompt": "A lighthouse on a cliff",
                        "concepts": ["dolly_zoom"],
                        "duration": "5s",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {
                        "state": "completed",
                        "request": {"concepts": [{"key": "dolly_zoom"}]},
                    },
                }
            ]
        },
        "image_to_video": {
            "steps": [
                _IMAGE,
                {
                    "node": "dream_machine",
                    "params": {
                        "model": "ray-flash-2",
                        "prompt": "The forest slowly comes alive",
                        "start_image_url": "{{steps[0].assets.image}}",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
        "pixazo_image_to_video": {
            "steps": [
                _IMAGE,
                {
                    "node": "dream_machine",
                    "provider": "pixazo",
                    "params": {
                        "model": "Ray 2 Flash",
                        "prompt": "The forest slowly comes alive",
                        "start_image_url": "{{steps[0].assets.image}}",
                        "resolution": "540p",
                        "duration": "5s",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed", "provider": "pixazo"},
                },
            ]
        },
    },
    "get_generation": {
        "completed_video": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "get_generation",
                    "params": {"generation_id": "{{steps[0].id}}"},
                    "expect": {
                        "id": "{{steps[0].id}}",
                        "state": "completed",
                        "assets": {"video": "{{steps[0].assets.video}}"},
                    },
                },
            ]
        },
        "missing_generation": {
            "steps": [
                {
                    "node": "get_generation",
                    "params": {"generation_id": "00000000-0000-4000-8000-000000000000"},
                    "error": "not_found",
                }
            ]
        },
        "pixazo_request": {
            "steps": [
                _IMAGE,
                {
                    "node": "dream_machine",
                    "provider": "pixazo",
                    "params": {
                        "model": "ray-flash-2",
                        "prompt": "Snow starts to fall",
                        "start_image_url": "{{steps[0].assets.image}}",
                    },
                    "wait": "poll",
                },
                {
                    "node": "get_generation",
                    "provider": "pixazo",
                    "params": {"generation_id": "{{steps[1].id}}"},
                    "expect": {"id": "{{steps[1].id}}", "state": "completed", "provider": "pixazo"},
                },
            ]
        },
    },
    "list_generations": {
        "page": {
            "steps": [
                _video("First", wait="none"),
                _video("Second", wait="none"),
                {
                    "node": "list_generations",
                    "params": {"limit": 1, "offset": 0},
                    "expect": {"has_more": True, "limit": 1, "offset": 0},
                },
            ]
        },
        "return_all": {
            "steps": [
                _video("First", wait="none"),
                _video("Second", wait="none"),
                _video("Third", wait="none"),
                {
                    "node": "list_generations",
                    "params": {"limit": 2, "return_all": "Yes"},
                    "expect": {"count": 3, "has_more": False},
                },
            ]
        },
    },
    "delete_generation": {
        "delete_then_get": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "delete_generation",
                    "params": {"generation_id": "{{steps[0].id}}"},
                    "expect": {"id": "{{steps[0].id}}", "deleted": True},
                },
                {
                    "node": "get_generation",
                    "params": {"generation_id": "{{steps[0].id}}"},
                    "error": "not_found",
                },
            ]
        },
    },
    "extend_video": {
        "forward": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "extend_video",
                    "params": {
                        "generation_id": "{{steps[0].id}}",
                        "model": "ray-flash-2",
                        "prompt": "The tiger rolls in the snow",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
        "backward": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "extend_video",
                    "params": {
                        "generation_id": "{{steps[0].id}}",
                        "direction": "Backward (lead up to it)",
                        "model": "ray-flash-2",
                        "prompt": "The tiger wakes up",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
        "backward_with_image": {
            "steps": [
                _IMAGE,
                _video(PROMPT),
                {
                    "node": "extend_video",
                    "params": {
                        "generation_id": "{{steps[1].id}}",
                        "direction": "backward",
                        "model": "ray-flash-2",
                        "prompt": "Out of the forest comes a tiger",
                        "image_url": "{{steps[0].assets.image}}",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
        "interpolate": {
            "steps": [
                _video(PROMPT),
                _video("A tiger sleeping in snow"),
                {
                    "node": "extend_video",
                    "params": {
                        "generation_id": "{{steps[0].id}}",
                        "to_generation_id": "{{steps[1].id}}",
                        "model": "ray-flash-2",
                        "prompt": "The tiger lies down",
                        "resolution": "540p",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
    },
    "generate_image": {
        "text_to_image": {
            "steps": [
                {
                    "node": "generate_image",
                    "params": {
                        "model": "Photon Flash 1",
                        "prompt": "A lighthouse at dusk, oil painting",
                        "aspect_ratio": "1:1",
                        "format": "png",
                    },
                    "wait": "poll",
                    "expect": {
                        "state": "completed",
                        "generation_type": "image",
                        "model": "photon-flash-1",
                    },
                }
            ]
        },
        "with_image_reference": {
            "steps": [
                _IMAGE,
                {
                    "node": "generate_image",
                    "params": {
                        "model": "photon-1",
                        "prompt": "The same forest at night",
                        "image_refs": [{"url": "{{steps[0].assets.image}}", "weight": 0.8}],
                    },
                    "wait": "poll",
                    "expect": {"state": "completed", "generation_type": "image"},
                },
            ]
        },
    },
    "upscale_video": {
        "to_1080p": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "upscale_video",
                    "params": {"generation_id": "{{steps[0].id}}", "resolution": "1080p"},
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
    },
    "add_audio": {
        "wind_and_birds": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "add_audio",
                    "params": {
                        "generation_id": "{{steps[0].id}}",
                        "prompt": "Soft wind and distant birdsong",
                        "negative_prompt": "music",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
    },
    "modify_video": {
        "flex": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "modify_video",
                    "params": {
                        "video_url": "{{steps[0].assets.video}}",
                        "mode": "flex_1",
                        "model": "ray-flash-2",
                        "prompt": "Turn it into a watercolor painting",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
    },
    "reframe_video": {
        "to_portrait": {
            "steps": [
                _video(PROMPT),
                {
                    "node": "reframe_video",
                    "params": {
                        "media_url": "{{steps[0].assets.video}}",
                        "aspect_ratio": "9:16",
                        "model": "ray-flash-2",
                        "prompt": "More snow above",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed"},
                },
            ]
        },
    },
    "reframe_image": {
        "to_portrait": {
            "steps": [
                _IMAGE,
                {
                    "node": "reframe_image",
                    "params": {
                        "media_url": "{{steps[0].assets.image}}",
                        "aspect_ratio": "9:16",
                        "model": "photon-flash-1",
                    },
                    "wait": "poll",
                    "expect": {"state": "completed", "generation_type": "image"},
                },
            ]
        },
    },
    "list_concepts": {
        "all": {"steps": [{"node": "list_concepts", "params": {}}]},
    },
    "list_camera_motions": {
        "all": {"steps": [{"node": "list_camera_motions", "params": {}}]},
    },
    "get_credits": {
        "fresh_account": {
            "steps": [
                {
                    "node": "get_credits",
                    "params": {},
                    "expect": {"credit_balance_cents": 100000.0, "credit_balance_usd": 1000.0},
                }
            ]
        },
    },
}

# -- Luma Agents API (Ray 3.2, UNI-1, Files) ------------------------------------------------------
# A local file to upload (local paths in generation fields are tested in tests/agents: the
# mapped request names the path, the recorded one the file id it became).
FRAME = str(Path(__file__).resolve().parent / "agents" / "frame.png")


def _agents(node: str, params: dict[str, Any], wait: str = "poll", **more: Any) -> dict[str, Any]:
    return {"node": node, "params": params, "wait": wait, "provider": "luma_agents", **more}


def _ray(prompt: str = PROMPT, **params: Any) -> dict[str, Any]:
    return _agents("ray_video", {"prompt": prompt, "resolution": "360p", **params})


def _uni(prompt: str = "A lighthouse on a cliff at sunset") -> dict[str, Any]:
    return _agents("uni_image", {"prompt": prompt, "aspect_ratio": "16:9"})


_UPLOAD = _agents("upload_file", {"path": FRAME}, wait="none")
AGENTS_SCENARIOS: dict[str, dict[str, dict[str, Any]]] = {
    "ray_video": {
        "text_to_video": {
            "steps": [
                _ray(model="Ray 3.2", aspect_ratio="9:16")
                | {"download": True, "expect": {"state": "completed", "model": "ray-3.2"}}
            ]
        },
        "keyframes_in_seconds_and_percent": {
            "steps": [
                _uni(),
                _ray(
                    "The lighthouse at dawn, then at night",
                    keyframes=[
                        {"image": "{{steps[0].id}}", "at": "0s"},
                        {"image": "{{steps[0].id}}", "at": "50%"},
                    ],
                    duration="10s",
                ),
            ]
        },
        "extend_forward": {
            "steps": [_ray(), _ray("The tiger starts running", extend_from="{{steps[0].id}}")]
        },
    },
    "ray_edit_video": {
        "flex": {
            "steps": [
                _ray(),
                _agents(
                    "ray_edit_video",
                    {
                        "source": "{{steps[0].id}}",
                        "prompt": "Turn it into a watercolor painting",
                        "strength": "Flex 1",
                        "depth": "Yes",
                        "resolution": "360p",
                    },
                    expect={"state": "completed", "generation_type": "video_edit"},
                ),
            ]
        },
    },
    "ray_reframe_video": {
        "to_square": {
            "steps": [
                _ray(),
                _agents(
                    "ray_reframe_video",
                    {"source": "{{steps[0].id}}", "aspect_ratio": "1:1", "resolution": "360p"},
                    expect={"state": "completed", "generation_type": "video_reframe"},
                ),
            ]
        },
    },
    "uni_image": {
        "text_to_image": {"steps": [_uni() | {"expect": {"state": "completed", "model": "uni-1"}}]},
        "manga_with_references": {
            "steps": [
                _uni(),
                _agents(
                    "uni_image",
                    {
                        "model": "UNI-1 Max",
                        "prompt": "The same lighthouse, drawn as a manga panel",
                        "style": "manga",
                        "output_format": "png",
                        "reference_images": ["{{steps[0].id}}", "generation:{{steps[0].id}}"],
                    },
                ),
            ]
        },
    },
    "uni_edit_image": {
        "winter": {
            "steps": [
                _uni(),
                _agents(
                    "uni_edit_image",
                    {"source": "{{steps[0].id}}", "prompt": "Make it winter, with snow"},
                    expect={"state": "completed", "generation_type": "image_edit"},
                ),
            ]
        },
    },
    "uni_layers": {
        "layers": {
            "steps": [
                _uni(),
                _agents(
                    "uni_layers",
                    {"source": "{{steps[0].id}}", "resolution": "1k"},
                    expect={"state": "completed", "generation_type": "layering"},
                ),
            ]
        },
    },
    "get_agents_generation": {
        "after_create": {
            "steps": [
                _uni(),
                _agents(
                    "get_agents_generation",
                    {"generation_id": "{{steps[0].id}}"},
                    wait="none",
                    expect={"id": "{{steps[0].id}}", "state": "completed"},
                ),
            ]
        },
        "unknown_id": {
            "steps": [
                _agents(
                    "get_agents_generation",
                    {"generation_id": "00000000-0000-4000-8000-000000000000"},
                    wait="none",
                    error="not_found",
                )
            ]
        },
    },
    "list_files": {
        "after_upload": {"steps": [_UPLOAD, _agents("list_files", {"limit": 10}, wait="none")]},
    },
    "get_file": {
        "after_upload": {
            "steps": [
                _UPLOAD,
                _agents(
                    "get_file",
                    {"file_id": "{{steps[0].id}}"},
                    wait="none",
                    expect={"state": "ready", "mime_type": "image/png"},
                ),
            ]
        },
    },
    "delete_file": {
        "after_upload": {
            "steps": [
                _UPLOAD,
                _agents(
                    "delete_file",
                    {"file_id": "{{steps[0].id}}"},
                    wait="none",
                    expect={"deleted": True},
                ),
            ]
        },
    },
}
SCENARIOS.update(AGENTS_SCENARIOS)
