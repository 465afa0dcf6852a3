"""Settings of the files service (environment variables, see .env.example)."""

from __future__ import annotations

from pydantic import Field

from chainchat_service.settings import ServiceSettings

MIB = 1024 * 1024


class FilesSettings(ServiceSettings):
    service_name: str = "files"
    # Loopback by default: the gateway is the only client of the internal HTTP API (README.md).
    http_host: str = "127.0.0.1"
    http_port: int = 8103
    ipfs_api_url: str = "http://127.0.0.1:5001/api/v0"
    max_file_bytes: int = Field(default=100 * MIB, ge=0)
    # HMAC key the gateway signs caller identities with; required in production (README.md).
    files_internal_secret: str = ""
    ipfs_connect_timeout_s: float = Field(default=3.0, gt=0)
    # an add may wait this long for the node after the last byte (import + pin of a large file)
    ipfs_read_timeout_s: float = Field(default=120.0, gt=0)
    # run the node's garbage collector after a failed upload or an unpin, at most this often
    # (0 disables it; a Kubo node with its own GC schedule does not need it)
    ipfs_gc_interval_s: float = Field(default=60.0, ge=0)
    # a file no message declared this long after its upload was never sent: it is deleted (with a
    # tombstone) and unpinned (0 keeps such files for ever)
    files_undeclared_ttl_s: float = Field(default=7 * 86400, ge=0)
    # a pin no file record uses (an upload whose record was never committed: a crash between the
    # node's add and the commit) is removed once it has been orphaned this long; 0 turns it off,
    # as it must be when the node also holds pins of other applications
    ipfs_orphan_grace_s: float = Field(default=3600, ge=0)
    files_sweep_interval_s: float = Field(default=600, gt=0)
    membership_timeout_s: float = Field(default=5.0, gt=0)
    secret_fields: tuple[str, ...] = ("files_internal_secret",)
