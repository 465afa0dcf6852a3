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


# --- the C-encoder fast path must give exactly the reference implementation's bytes -----------

import rfc8785  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json_values)
def test_fast_path_matches_rfc8785(value: object) -> None:
    from chainchat_protocol.canonical import canonical_json

    assert canonical_json(value) == rfc8785.dumps(value)


def test_fast_path_edge_cases_match_rfc8785() -> None:
    from chainchat_protocol.canonical import canonical_json

    for value in (
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code-point order here
        {"ctl": '\x00\x01\x1f\x7f\u2028\u2029\b\f\n\r\t"\\/'},
        {"big": 2**53 - 1, "neg": -(2**53) + 1, "t": True, "f": False, "n": None},
        [1.5, 0.1, 1e21, -0.0],
        {"emoji": "\U0001f600", "k": ["é", "ß"]},
    ):
        assert canonical_json(value) == rfc8785.dumps(value)


def test_lone_surrogates_are_rejected_on_both_paths() -> None:
    from chainchat_protocol.canonical import CanonicalJSONError, canonical_json

    for value in ("\ud800", {"k": "a\udfffb"}, {"\ud800": 1}):
        with pytest.raises(CanonicalJSONError):
            canonical_json(value)
