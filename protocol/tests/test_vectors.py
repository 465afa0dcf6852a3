"""The committed vector files must be exactly what the implementation produces today."""

import json

import pytest

from chainchat_protocol.vectors import NAMES, VECTORS_DIR, build, load, main


@pytest.mark.parametrize("name", NAMES)
def test_committed_vectors_match_implementation(name: str) -> None:
    assert load(name) == json.loads(json.dumps(build(name))), (
        f"{name}.json is stale: run `python -m chainchat_protocol.vectors --regenerate`"
    )


def test_every_file_is_known_and_described() -> None:
    assert {p.stem for p in VECTORS_DIR.glob("*.json")} == set(NAMES)
    assert all(load(name)["description"] for name in NAMES)


def test_check_command() -> None:
    assert main(["--check"]) == 0
