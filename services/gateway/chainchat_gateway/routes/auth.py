"""Public API routes for the auth domain (SPEC §7); they forward to the auth service over NATS."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["auth"])
