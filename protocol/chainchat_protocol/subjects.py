"""Every NATS subject name, versioned, declared once. Services import these, never literals."""

from __future__ import annotations


class Subject:
    # health (request/reply), one per service: see chainchat_protocol.health.health_rpc
    HEALTH = "{service}.health.v1"

    # JetStream: log entries for the ledger (at-least-once; the ledger appends idempotently)
    LEDGER_STREAM = "LEDGER"
    LEDGER_ENTRY = "ledger.entry.{kind}.v1"
    LEDGER_ENTRY_ALL = "ledger.entry.*.v1"

    # core NATS events gateways forward to connected clients
    DELIVERY_TO_USER = "deliver.user.{user_id}.v1"
    DELIVERY_ALL_USERS = "deliver.user.*.v1"
    LEDGER_ANCHORED = "ledger.anchored.v1"
    AUTH_REVOKED = "auth.session.revoked.v1"
    KEY_CHANGED = "auth.key.changed.v1"
