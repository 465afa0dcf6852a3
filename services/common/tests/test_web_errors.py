"""Every error leaves the gateway as the SPEC body; a bug is a 500 without a stack trace."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from chainchat_protocol.errors import Conflict, RateLimited
from chainchat_service.web import install_error_handlers


class Body(BaseModel):
    name: str
    count: int


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        if body.name == "dup":
            raise Conflict("that thing exists", code="thing_exists")
        if body.name == "fast":
            raise RateLimited("slow down", retry_after=17)
        if body.name == "bug":
            raise KeyError("internal detail /etc/passwd")
        return {"ok": body.name}

    return app


async def _post(content: bytes | str) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/things", content=content, headers={"content-type": "application/json"})


async def test_malformed_json_is_422_with_spec_body() -> None:
    resp = await _post("{not json")
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"
    assert "JSON" in resp.json()["error"]["message"]


async def test_wrong_type_names_the_field() -> None:
    resp = await _post('{"name": "a", "count": "many"}')
    assert resp.status_code == 422
    assert resp.json()["error"]["message"].startswith("count:")


async def test_typed_errors_keep_code_status_and_headers() -> None:
    resp = await _post('{"name": "dup", "count": 1}')
    assert resp.status_code == 409
    assert resp.json() == {"error": {"code": "thing_exists", "message": "that thing exists"}}
    limited = await _post('{"name": "fast", "count": 1}')
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "17"


async def test_a_bug_is_500_without_internals() -> None:
    resp = await _post('{"name": "bug", "count": 1}')
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal_error"
    assert "passwd" not in resp.text
    assert "Traceback" not in resp.text
