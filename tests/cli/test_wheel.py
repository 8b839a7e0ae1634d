"""The wheel carries manifest, nodes and schemas, and `dreamnodes nodes` runs from it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_carries_the_data_and_lists_the_nodes(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("dreamnodes-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("dreamnodes/_data/manifest.json"))
    node_ids = [node["id"] for node in manifest["nodes"]]
    for node in manifest["nodes"]:
        assert f"dreamnodes/_data/nodes/{Path(node['file']).name}" in names, node
    for schema in (
        "node.schema.json",
        "defs.json",
        "dream_machine.input.json",
        "extend_video.input.json",
        "generation.json",
    ):
        assert f"dreamnodes/_data/schemas/{schema}" in names, schema
    assert "dreamnodes/cli/entry.py" in names and "dreamnodes/runlog/store.py" in names

    target = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import dreamnodes; "
        "print(dreamnodes.__file__, file=sys.stderr); "
        "from dreamnodes.cli import main; sys.exit(main(['nodes']))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.strip().startswith(str(target))  # the wheel's copy, not the checkout
    listed = [line.split()[0] for line in ran.stdout.splitlines()]
    assert listed == node_ids
    for node in (
        "dream_machine",
        "get_generation",
        "list_generations",
        "delete_generation",
        "extend_video",
    ):
        assert node in listed
