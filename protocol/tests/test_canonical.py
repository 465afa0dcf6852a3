import json

import pytest

from chainchat_protocol.canonical import (
    CanonicalJSONError,
    canonical_json,
    canonical_sha256_hex,
)
from chainchat_protocol.vectors import load


def test_shared_vectors() -> None:
    for case in load("canonical_json")["cases"]:
        out = canonical_json(json.loads(case["input"]))
        assert out.decode("utf-8") == case["canonical"]
        assert out.hex() == case["canonical_hex"]


def test_sorting_uses_utf16_code_units() -> None:
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB01 in UTF-16 order.
    assert canonical_json({"\ufb01": 1, "\U0001f600": 2}) == '{"😀":2,"ﬁ":1}'.encode()


def test_no_whitespace_and_utf8() -> None:
    assert canonical_json({"b": [1, {"d": None, "c": "é"}], "a": True}) == (
        '{"a":true,"b":[1,{"c":"é","d":null}]}'.encode()
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**60, {1: "x"}, b"bytes"])
def test_rejects_unrepresentable(bad: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(bad)


def test_sha256_hex() -> None:
    assert canonical_sha256_hex({}) == ("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
