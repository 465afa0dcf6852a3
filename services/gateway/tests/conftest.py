"""Gateway fixtures: the chat API and WebSocket hub in front of the real chat handlers
(:mod:`chainchat_testing.chat_gateway`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chainchat_testing.chat_gateway import MiniStack, start_mini_stack


@pytest.fixture(scope="module")
async def mini_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MiniStack]:
    """NATS (private), the chat handlers and a gateway served by uvicorn, all real but auth."""
    async with start_mini_stack(tmp_path_factory.mktemp("mini")) as stack:
        yield stack
