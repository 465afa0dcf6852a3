"""Public API routes for the chat domain (SPEC §7); they forward to the chat service over NATS."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["chat"])
