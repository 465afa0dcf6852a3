"""The five services answer health over NATS and the gateway aggregates it (walking skeleton)."""

from __future__ import annotations

import time

import httpx
import nats
import pytest

from chainchat_protocol.health import SERVICES, HealthReply, health_rpc
from chainchat_protocol.rpc import RpcReply
from devstack.stack import Stack

pytestmark = pytest.mark.integration


async def test_each_service_answers_health_over_nats(running_stack: Stack) -> None:
    nc = await nats.connect(running_stack.nats.client_url())
    try:
        for service in SERVICES:
            msg = await nc.request(health_rpc(service).subject, b"{}", timeout=3)
            reply = RpcReply.model_validate_json(msg.data)
            health = HealthReply.model_validate(reply.data)
            assert health.service == service
            assert health.checks["nats"].ok
    finally:
        await nc.close()


def test_gateway_readiness_shows_all_five(api: httpx.Client) -> None:
    resp = api.get("/api/v1/readyz")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ready"] is True
    assert set(body["services"]) == set(SERVICES)
    assert all(s["ready"] and s["latency_ms"] >= 0 for s in body["services"].values())


def test_every_service_exposes_health_ready_metrics(running_stack: Stack) -> None:
    for name, instances in running_stack.services.items():
        url = instances[0].url
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok", name
        assert httpx.get(f"{url}/readyz").status_code == 200, name
        metrics = httpx.get(f"{url}/metrics").text
        assert "chainchat_rpc_handled_total" in metrics, name


def test_openapi_document_is_published(api: httpx.Client) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/readyz" in doc["paths"]


def test_unknown_route_gets_the_spec_error_body(api: httpx.Client) -> None:
    resp = api.get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    assert resp.json() == {"error": {"code": "not_found", "message": "Not Found"}}


def test_correlation_id_is_returned(api: httpx.Client) -> None:
    resp = api.get("/api/v1/readyz", headers={"X-Correlation-ID": "abcdef0123456789"})
    assert resp.headers["X-Correlation-ID"] == "abcdef0123456789"


def _wait_for(api: httpx.Client, ready: bool, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        resp = api.get("/api/v1/readyz", timeout=10)
        body = resp.json()
        if (resp.status_code == 200) is ready:
            return body
        time.sleep(0.3)
    raise AssertionError(f"readiness never became {ready}: {body}")


def test_nats_restart_is_survived_without_restarting_services(
    running_stack: Stack, api: httpx.Client
) -> None:
    pids = {n: [s.process.pid for s in inst if s.process] for n, inst in running_stack.services.items()}
    running_stack.nats.stop()
    try:
        body = _wait_for(api, ready=False)
        assert body["ready"] is False
    finally:
        running_stack.nats.start()
    _wait_for(api, ready=True, timeout=60)
    after = {n: [s.process.pid for s in inst if s.process] for n, inst in running_stack.services.items()}
    assert after == pids  # nobody was restarted
