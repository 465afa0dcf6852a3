"""Settings of the gateway (environment variables, see .env.example)."""

from __future__ import annotations

from pathlib import Path

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
