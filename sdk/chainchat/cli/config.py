"""The CLI's state on disk: profiles (server + account + session), device keys (0600), pinned peer keys.

Layout under ``$CHAINCHAT_CONFIG_DIR`` or ``$XDG_CONFIG_HOME/chainchat`` (``~/.config/chainchat``)::

    config.json                 {"current": "default", "profiles": {"default": {...}}}
    profiles/<name>/device.key  the device's private keys (optionally sealed with a passphrase)
    profiles/<name>/pins.json   key ids confirmed per account, own included (new devices need confirming)
    profiles/<name>/ledger.json the pinned ledger (chain id, contract) and the largest verified tree head
    profiles/<name>/cursors.json  last seq seen per conversation (watch catches up from there)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainchat.client import Session
from chainchat.crypto import DeviceKeys, export_device_keys, import_device_keys

DEFAULT_SERVER = "http://127.0.0.1:8000"


def config_dir() -> Path:
    explicit = os.environ.get("CHAINCHAT_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chainchat"


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


@dataclass
class Profile:
    name: str
    root: Path
    server: str = DEFAULT_SERVER
    email: str | None = None
    user_id: str | None = None
    session: Session | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.root / "profiles" / self.name

    @property
    def key_path(self) -> Path:
        return self.dir / "device.key"

    def has_keys(self) -> bool:
        return self.key_path.exists()

    def load_keys(self, passphrase: str | None = None) -> DeviceKeys:
        return import_device_keys(
            self.key_path.read_bytes(), passphrase or os.environ.get("CHAINCHAT_PASSPHRASE")
        )

    def save_keys(self, keys: DeviceKeys, passphrase: str | None = None) -> None:
        _write_private(self.key_path, export_device_keys(keys, passphrase))

    def _load_json(self, name: str) -> dict[str, Any]:
        path = self.dir / name
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return data

    def _save_json(self, name: str, data: dict[str, Any]) -> None:
        _write_private(self.dir / name, json.dumps(data, indent=2, sort_keys=True).encode())

    def pins(self) -> dict[str, list[str]]:
        return self._load_json("pins.json")

    def save_pins(self, pins: dict[str, list[str]]) -> None:
        self._save_json("pins.json", pins)

    def ledger_state(self) -> dict[str, Any]:
        return self._load_json("ledger.json")

    def save_ledger_state(self, state: dict[str, Any]) -> None:
        self._save_json("ledger.json", dict(state))

    def cursors(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._load_json("cursors.json").items()}

    def save_cursors(self, cursors: dict[str, int]) -> None:
        self._save_json("cursors.json", dict(cursors))

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "email": self.email,
            "user_id": self.user_id,
            "session": self.session.to_dict() if self.session else None,
            **self.extra,
        }


class Config:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or config_dir()
        self.path = self.root / "config.json"
        raw: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.current: str = raw.get("current", "default")
        self._profiles: dict[str, dict[str, Any]] = raw.get("profiles", {})

    def profile(self, name: str | None = None) -> Profile:
        name = name or self.current
        data = dict(self._profiles.get(name, {}))
        session = data.pop("session", None)
        return Profile(
            name=name,
            root=self.root,
            server=data.pop("server", DEFAULT_SERVER),
            email=data.pop("email", None),
            user_id=data.pop("user_id", None),
            session=Session.from_dict(session) if session else None,
            extra=data,
        )

    def save(self, profile: Profile, *, make_current: bool = False) -> None:
        self._profiles[profile.name] = profile.to_dict()
        if make_current:
            self.current = profile.name
        body = {"current": self.current, "profiles": self._profiles}
        _write_private(self.path, json.dumps(body, indent=2, sort_keys=True).encode())

    def names(self) -> list[str]:
        return sorted(self._profiles)
