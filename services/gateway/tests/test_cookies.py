"""The refresh cookie is Secure everywhere but plain HTTP on a loopback address."""

from __future__ import annotations

import pytest

from chainchat_gateway.cookies import cookie_secure
from chainchat_gateway.settings import GatewaySettings


@pytest.mark.parametrize(
    ("public_url", "secure"),
    [
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("https://127.0.0.1:8443", True),
        ("https://chat.example.org", True),
        ("http://chat.example.org", True),  # no browser keeps it then: plain HTTP is not for real use
        ("http://10.0.0.5:8000", True),
    ],
)
def test_secure_flag(public_url: str, secure: bool) -> None:
    settings = GatewaySettings(_env_file=None, public_url=public_url)  # type: ignore[call-arg]
    assert cookie_secure(settings) is secure
