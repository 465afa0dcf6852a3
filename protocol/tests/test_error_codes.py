"""The error codes are a contract (SPEC §7: clients switch on them): each is declared once, in the
protocol, as snake_case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chainchat_protocol import errors
from chainchat_protocol.auth import AuthErrorCode
from chainchat_protocol.chat import ChatErrorCode
from chainchat_protocol.errors import ErrorCode, ErrorDetail, GatewayErrorCode
from chainchat_protocol.files import FilesErrorCode
from chainchat_protocol.ledger import LedgerErrorCode

CLASSES = (ErrorCode, GatewayErrorCode, AuthErrorCode, ChatErrorCode, FilesErrorCode, LedgerErrorCode)


def _codes(cls: type) -> dict[str, str]:
    return {name: value for name, value in vars(cls).items() if name.isupper()}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_codes_are_snake_case_and_named_after_themselves(cls: type) -> None:
    for name, value in _codes(cls).items():
        assert ErrorDetail(code=value, message="m").code == value
        assert name == value.upper(), f"{cls.__name__}.{name} = {value!r}"


def test_each_code_is_declared_in_one_class() -> None:
    owners: dict[str, list[str]] = {}
    for cls in CLASSES:
        for value in _codes(cls).values():
            owners.setdefault(value, []).append(cls.__name__)
    assert {code: names for code, names in owners.items() if len(names) > 1} == {}


def test_every_error_class_defaults_to_a_shared_code() -> None:
    classes = [obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, Exception)]
    assert len(classes) >= 10
    assert {cls.default_code for cls in classes} <= set(_codes(ErrorCode).values())


def test_every_code_the_services_answer_is_declared_here() -> None:
    """A code written as a string anywhere in the product (where the constant is not used yet)
    must still be one the protocol declares: no service invents a code of its own."""
    root = Path(__file__).resolve().parents[2]
    declared = {value for cls in CLASSES for value in _codes(cls).values()}
    literal = re.compile(r'\b(?:code=|default_code = )"([a-z0-9_]+)"')
    sources = [*root.glob("services/*/chainchat_*/**/*.py"), *root.glob("protocol/chainchat_protocol/*.py")]
    assert len(sources) > 50
    unknown = {
        (path.relative_to(root).as_posix(), code)
        for path in sources
        for code in literal.findall(path.read_text("utf-8"))
        if code not in declared
    }
    assert unknown == set()
