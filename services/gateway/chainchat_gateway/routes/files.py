"""Public API routes for the files domain (SPEC §7); they forward to the files service over NATS."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["files"])
