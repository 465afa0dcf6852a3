"""Prometheus metrics of the ledger (served on ``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TREE_SIZE = Gauge("chainchat_ledger_tree_size", "Leaves committed to the log")
ANCHORED_SIZE = Gauge("chainchat_ledger_anchored_tree_size", "Tree size of the latest anchored head")
PENDING_LEAVES = Gauge("chainchat_ledger_pending_leaves", "Leaves not yet covered by an anchor")
LEAVES_APPENDED = Counter("chainchat_ledger_leaves_appended_total", "New leaves appended")
APPEND_RETRIES = Counter("chainchat_ledger_append_retries_total", "Appends retried after a race")
ENTRIES_CONSUMED = Counter("chainchat_ledger_stream_entries_total", "Stream messages handled", ["outcome"])
BATCH_SECONDS = Histogram(
    "chainchat_ledger_batch_seconds",
    "Time to append and acknowledge one fetched batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ANCHOR_TXS = Counter("chainchat_ledger_anchor_txs_total", "Anchor transactions", ["outcome"])
ANCHOR_GAS = Counter("chainchat_ledger_anchor_gas_total", "Gas used by confirmed anchors")
ANCHOR_SECONDS = Histogram(
    "chainchat_ledger_anchor_seconds",
    "From signing an anchor transaction to its confirmed receipt",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
CHAIN_UP = Gauge("chainchat_ledger_chain_up", "1 when the chain answered the last call")
CHAIN_RESETS = Counter("chainchat_ledger_chain_resets_total", "Chain resets detected")
IS_LEADER = Gauge("chainchat_ledger_leader", "1 while this instance holds the anchoring lease")
LOOP_ERRORS = Counter("chainchat_ledger_loop_errors_total", "Background loop failures", ["loop"])
