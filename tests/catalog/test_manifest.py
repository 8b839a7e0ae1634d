"""manifest.json alone lets a host list and draw every node: it agrees with the node files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dreamnodes.catalog.package import data_dir, load_package
from dreamnodes.preparation.prepare import prepare

ROOT = data_dir()
MANIFEST: dict[str, Any] = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
ENTRIES = MANIFEST["nodes"]


def node_file(entry: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((ROOT / entry["file"]).read_text(encoding="utf-8"))
    return spec


def test_every_node_file_is_listed_once() -> None:
    listed = [e["file"] for e in ENTRIES]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(f"nodes/{p.name}" for p in (ROOT / "nodes").glob("*.json"))
    assert len(ENTRIES) == 27  # 16 Dream Machine / Pixazo nodes, 11 Luma Agents nodes


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_manifest_entry_agrees_with_its_node_file(entry: dict[str, Any]) -> None:
    spec = node_file(entry)
    assert entry["id"] == spec["id"] and entry["file"] == f"nodes/{spec['id']}.json"
    for key in ("title", "category", "action", "description", "kind"):
        assert entry[key] == spec[key], key
    assert entry.get("family") == spec.get("family")
    assert entry["input"] == f"schemas/{spec['input']}"
    assert entry["output"] == f"schemas/{spec['output']}"
    assert (ROOT / entry["input"]).is_file() and (ROOT / entry["output"]).is_file()
    assert entry["providers"] == list(spec.get("providers", {}))
    assert set(entry["providers"]) <= set(MANIFEST["providers"])
    assert entry.get("dynamic_options") == spec.get("dynamic_options")
    assert entry["category"] in MANIFEST["categories"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_dynamic_options_point_at_a_list_node_and_a_real_field(entry: dict[str, Any]) -> None:
    pkg = load_package()
    for field, source in entry.get("dynamic_options", {}).items():
        assert field in pkg.schema(Path(entry["input"]).name)["properties"]
        lister = pkg.node(source["node"])
        assert lister.kind == "list"
        assert source["path"] in pkg.schema(lister.spec["output"])["properties"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_input_schema_examples_are_valid_input(entry: dict[str, Any]) -> None:
    pkg = load_package()
    schema = pkg.schema(Path(entry["input"]).name)
    assert schema["examples"], "a host shows examples"
    for example in schema["examples"]:
        provider = (
            "luma"
            if "luma" in entry["providers"] or not entry["providers"]
            else entry["providers"][0]
        )
        prepare(entry["id"], example, provider=provider)


def test_categories_are_the_meta_schemas_in_order() -> None:
    pkg = load_package()
    assert (
        MANIFEST["categories"] == pkg.schema("node.schema.json")["properties"]["category"]["enum"]
    )
    used = {e["category"] for e in ENTRIES}
    assert used == set(MANIFEST["categories"])


def test_credentials_are_secret_fields() -> None:
    for credential in MANIFEST["credentials"].values():
        assert any(f.get("secret") is True for f in credential["fields"])


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e["kind"] == "create"], ids=lambda e: e["id"]
)
def test_every_create_node_has_a_price_for_its_examples(entry: dict[str, Any]) -> None:
    from dreamnodes.preparation.prepare import estimate

    spec = node_file(entry)
    for provider, declared in spec["providers"].items():
        assert "note" in declared["price"], f"{provider}: say where the figure comes from"
    provider = next(iter(spec["providers"]))
    declared = spec["providers"][provider]["price"]
    if "base" not in declared and "table" not in declared:
        assert "no estimate" in declared["note"]  # unpublished (UNI-1 layering): said, not guessed
        return
    for example in load_package().schema(Path(entry["input"]).name)["examples"]:
        assert estimate(entry["id"], example, provider=provider)["estimate_usd"] > 0
