"""Settings of the gateway (environment variables, see .env.example)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from chainchat_service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = 8000
    # the files service's internal HTTP API; several instances comma-separated (routes/files.py)
    files_http_url: str = "http://127.0.0.1:8103"
    web_dist_dir: Path = ROOT / "web" / "dist"
    rpc_timeout_s: float = 5.0
    trusted_proxies: int = 0
    # lifetime of the web client's refresh-token cookie (the session itself ends by auth's rules)
    refresh_cookie_max_age_s: int = 30 * 86400

    # the files proxy (routes/files.py): the same variables as the files service reads
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=0)
    files_internal_secret: str = ""

    # the WebSocket hub (ws.py): the WS_* variables
    ws_idle_timeout_s: float = 60.0
    ws_auth_timeout_s: float = 10.0
    ws_send_queue: int = 256
    ws_pending_sends: int = 16
    # sends this gateway accepted and has not answered yet, over all connections: beyond it a send
    # is refused at once (``rate_limited`` with ``retry_after``) instead of queueing for seconds.
    # The limit moves so that admitted sends queue about ``ws_send_target_wait_s`` beyond the
    # latency of an unloaded send, within these bounds (``ws.SendAdmission``). 50 ms: at twice the
    # capacity (bench/chat_bench.py) it admitted more than 100 ms did (397 vs 340 msg/s) with a
    # third of the p99 (236 vs 422 ms); 25 ms refused sends even below capacity.
    ws_max_sends_outstanding: int = 128
    ws_min_sends_outstanding: int = 16
    ws_send_target_wait_s: float = 0.05
    ws_retry_after_s: float = 0.5
    ws_max_frame_bytes: int = 256 * 1024
    ws_max_frames_per_s: float = 200.0
    ws_frame_burst: int = 1000
    ws_max_malformed_frames: int = 50
    # permessage-deflate: frames are mostly base64 ciphertext, which deflate shrinks by about a
    # quarter at the cost of zlib on every frame, both ways, on the gateway's hot path
    ws_per_message_deflate: bool = False
