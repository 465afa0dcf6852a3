"""Public API routes for the ledger domain (SPEC §7); they forward to the ledger service over NATS."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["ledger"])
