"""Dependencies the gateway's routes share (typed aliases keep route signatures short)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chainchat_gateway.settings import GatewaySettings
from chainchat_service.bus import Bus
from chainchat_service.runtime import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def get_bus(request: Request) -> Bus:
    return get_runtime(request).bus


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
BusDep = Annotated[Bus, Depends(get_bus)]
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
