"""CLI behaviour that needs no server: config files, key files 0600, errors as one line, arg parsing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chainchat.cli.account import email_token
from chainchat.cli.config import Config
from chainchat.cli.proofs import looks_like_email_token
from chainchat.client import Session
from chainchat.crypto import DeviceKeys


def run_cli(
    *args: str, config_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "CHAINCHAT_CONFIG_DIR": str(config_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "chainchat.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def test_email_token_from_link_or_bare() -> None:
    assert email_token("http://127.0.0.1:8000/verify?token=abc_DEF-123") == "abc_DEF-123"
    assert email_token("  abc_DEF-123 \n") == "abc_DEF-123"


def test_verify_tells_message_ids_from_email_tokens() -> None:
    assert not looks_like_email_token("0d5f8a3c-6a0b-4b8e-9a56-0c1f5a3e2b7d")
    assert not looks_like_email_token("0d5f8a3c6a0b4b8e9a560c1f5a3e2b7d")
    assert looks_like_email_token("http://h/verify?token=0d5f8a3c6a0b4b8e9a560c1f5a3e2b7d")
    assert looks_like_email_token("Zm9vYmFyYmF6cXV4cXV1eHp6enp6enp6enp6enp6enp6")


def test_profiles_keys_and_sessions_are_private_files(tmp_path: Path) -> None:
    config = Config(tmp_path)
    profile = config.profile("alice")
    profile.server = "http://example.test:8000"
    profile.session = Session("access", "refresh", 123.0, {"user_id": "u1"})
    config.save(profile, make_current=True)
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    for path in (config.path, profile.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reloaded = Config(tmp_path).profile()
    assert reloaded.name == "alice"
    assert reloaded.server == "http://example.test:8000"
    assert reloaded.session is not None
    assert reloaded.session.refresh_token == "refresh"
    assert reloaded.load_keys().key_id == keys.key_id


def test_passphrase_sealed_key_file(tmp_path: Path) -> None:
    profile = Config(tmp_path).profile("p")
    keys = DeviceKeys.generate()
    profile.save_keys(keys, "correct horse battery staple")
    assert keys.x25519_private.hex() not in profile.key_path.read_text()
    with pytest.raises(Exception, match="passphrase"):
        profile.load_keys()
    assert profile.load_keys("correct horse battery staple").key_id == keys.key_id


def test_unreachable_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = Config(tmp_path)
    profile = config.profile()
    profile.server = "http://127.0.0.1:9"  # discard port: nothing listens
    config.save(profile)
    result = run_cli("ledger", "info", config_dir=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot reach http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_not_logged_in_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("whoami", config_dir=tmp_path)
    assert result.returncode == 1
    assert "not logged in" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = Config(tmp_path)
    profile = config.profile()
    profile.server = "http://127.0.0.1:9"
    config.save(profile)
    result = run_cli("--debug", "ledger", "info", config_dir=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_verify_a_tampered_proof_file_fails(tmp_path: Path) -> None:
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps({"status": "pending"}))
    result = run_cli("--json", "verify", "--file", str(proof), config_dir=tmp_path)
    assert result.returncode == 1
    assert json.loads(result.stdout)["valid"] is False
