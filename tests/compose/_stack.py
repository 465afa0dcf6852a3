"""The compose project tests/compose runs: compose.yaml (+ compose.local.yaml where images cannot be
pulled) and compose.test.yaml, which publishes the chain's RPC for the SDK's on-chain checks."""

from __future__ import annotations

from pathlib import Path

from devstack.compose import ComposeProject

SCALE = {"chat": 3, "gateway": 2}
TEST_OVERRIDE = Path(__file__).with_name("compose.test.yaml")


class StackUnderTest(ComposeProject):
    """The project with the chain's RPC published on a free port (compose.test.yaml)."""

    chain_port: int = 0

    @property
    def files(self) -> list[Path]:
        return [*super().files, TEST_OVERRIDE]

    @property
    def chain_rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.chain_port}"
