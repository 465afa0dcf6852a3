"""The committed vector files must be exactly what the implementation produces today."""

import json

import pytest

from chainchat_protocol.vectors import load, names
from tools.vectors import NAMES, build, main


@pytest.mark.parametrize("name", NAMES)
def test_committed_vectors_match_implementation(name: str) -> None:
    assert load(name) == json.loads(json.dumps(build(name))), (
        f"{name}.json is stale: run `python -m tools.vectors --regenerate`"
    )


def test_every_file_is_known_and_described() -> None:
    assert names() == sorted(NAMES)
    assert all(load(name)["description"] for name in NAMES)


def test_check_command() -> None:
    assert main(["--check"]) == 0
