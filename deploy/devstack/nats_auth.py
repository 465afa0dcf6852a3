"""Bus credentials: one NATS user per service with subject permissions (SPEC §11, "Bus credentials").

The one place that says who may publish and subscribe to what, and that writes the credentials.
A directory (``var/nats-auth/`` for ``make up``; each test stack its own) holds, mode 0700:

* ``<user>.password`` (mode 0600) — one strong random password per user (``secrets.token_urlsafe``,
  256 bits), kept across restarts: a service reads its own through ``NATS_PASSWORD_FILE``;
* ``authorization.conf`` (mode 0600) — the nats-server ``authorization { users: [...] }`` block
  with every user, its password and its permissions; the server config includes it.

Users: ``gateway``, ``auth``, ``chat``, ``files``, ``ledger`` (the services) and ``operator`` (the
local operator's and the test harness's full-access user, for tools that inspect the bus; no
service runs as it). Passwords rather than NKeys: nats-py needs the extra ``nkeys`` package for
NKeys, which the project does not install.

Rules the permissions encode: only ``auth`` may subscribe to ``auth.>`` request subjects (so only
auth can answer ``auth.jwks.v1`` or mint tokens), each service answers only its own prefix, only
the services with an outbox append ``ledger.entry.>``, the gateway cannot publish the events other
services own, and no service may delete or purge a JetStream stream or consumer. Every service
may request (``_INBOX.>`` to receive replies) and answer (``allow_responses``).

``python -m devstack.nats_auth DIR`` writes these files into DIR (for a server run by hand).
Docker Compose uses ``deploy/docker/nats-authorization.conf`` instead, generated from the same
permissions by ``python -m devstack.nats_auth --compose deploy/docker/nats-authorization.conf``
(``tests/deploy`` checks it is current): there each password is a variable, ``NATS_<USER>_PASSWORD``,
that Compose passes from ``.env`` to the nats container and, as ``NATS_PASSWORD``, to that service.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SERVICE_USERS = ("gateway", "auth", "chat", "files", "ledger")
OPERATOR = "operator"
USERS = (*SERVICE_USERS, OPERATOR)
CONF_NAME = "authorization.conf"

# events: published by their owner only, subscribed by whoever forwards or reacts to them
AUTH_EVENTS = ["auth.jwks.changed.v1", "auth.session.revoked.v1", "auth.key.changed.v1"]
CHAT_EVENTS = ["chat.message.posted.v1", "chat.message.deleted.v1"]
LEDGER_ENTRIES = "ledger.entry.>"
LEDGER_ANCHORED = "ledger.anchored.v1"
DELIVERIES = "deliver.user.>"
INBOX = "_INBOX.>"
# JetStream's API: streams and consumers created and read, never deleted or purged by a service
JS_API = "$JS.API.>"
JS_ACK = "$JS.ACK.>"
JS_FORBIDDEN = [
    "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.CONSUMER.DELETE.>",
]  # fmt: skip
HEALTH = [f"{name}.health.v1" for name in SERVICE_USERS]


def permissions(user: str) -> dict[str, Any]:
    """The nats-server ``permissions`` of one user."""
    if user == OPERATOR:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}, "allow_responses": True}
    publish: dict[str, list[str]] = {
        "gateway": ["auth.>", "chat.>", "files.>", "ledger.>", *HEALTH],
        "auth": ["auth.>", LEDGER_ENTRIES, DELIVERIES, JS_API],
        "chat": ["chat.>", LEDGER_ENTRIES, DELIVERIES, "auth.users.get.v1", "auth.keys.devices.v1", JS_API],
        "files": ["files.>", LEDGER_ENTRIES, "chat.conversation.member.v1", JS_API, JS_ACK],
        "ledger": ["ledger.>", JS_API, JS_ACK, "$KV.>"],
    }[user]
    subscribe: dict[str, list[str]] = {
        "gateway": ["gateway.>", DELIVERIES, *AUTH_EVENTS, LEDGER_ANCHORED, INBOX],
        "auth": ["auth.>", INBOX],
        "chat": ["chat.>", "auth.key.changed.v1", LEDGER_ANCHORED, INBOX],
        "files": ["files.>", INBOX],
        "ledger": ["ledger.>", INBOX],
    }[user]
    deny = list(JS_FORBIDDEN)
    if user == "gateway":  # it calls every service but speaks for none of them
        deny += [*AUTH_EVENTS, *CHAT_EVENTS, LEDGER_ENTRIES, LEDGER_ANCHORED]
    if user == "chat":
        deny += [LEDGER_ANCHORED]
    return {
        "publish": {"allow": publish, "deny": deny},
        "subscribe": {"allow": subscribe},
        "allow_responses": True,
    }


@dataclass(frozen=True)
class BusCredentials:
    """The credentials in one directory (see the module docstring for its layout)."""

    directory: Path

    def password_file(self, user: str) -> Path:
        return self.directory / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    @property
    def conf_file(self) -> Path:
        return self.directory / CONF_NAME

    def include_line(self, config_dir: Path) -> str:
        """The nats-server ``include`` of the authorization block for a config in ``config_dir``
        (nats-server resolves includes relative to the including file, absolute ones too)."""
        return f"include {json.dumps(os.path.relpath(self.conf_file, config_dir))}\n"

    def service_env(self, user: str) -> dict[str, str]:
        """What a service process needs to connect as ``user``."""
        return {"NATS_USER": user, "NATS_PASSWORD_FILE": str(self.password_file(user))}

    def url(self, url: str, user: str = OPERATOR) -> str:
        """``url`` (one server or several comma-separated) with ``user``'s credentials in each, for
        in-process clients and tools (never logged: the services redact user info in URLs)."""
        password = self.password(user)
        parts = []
        for server in (s.strip() for s in url.split(",") if s.strip()):
            split = urlsplit(server)
            parts.append(
                urlunsplit(split._replace(netloc=f"{user}:{password}@{split.hostname}:{split.port}"))
            )
        return ",".join(parts)


def _write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` with mode 0600 from the first byte (no window with wider bits)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_credentials(directory: Path) -> BusCredentials:
    """Create the directory's passwords (once: existing ones are kept) and (re)write the
    ``authorization.conf`` block from them; returns the credentials."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    creds = BusCredentials(directory)
    for user in USERS:
        path = creds.password_file(user)
        if not path.exists() or not path.read_text().strip():
            _write_private(path, secrets.token_urlsafe(32) + "\n")
        os.chmod(path, 0o600)
    _write_private(creds.conf_file, authorization_block(creds))
    return creds


def authorization_block(creds: BusCredentials) -> str:
    """The nats-server ``authorization`` block with the directory's passwords (JSON values are valid
    NATS config, and quoting keeps ``$JS``/``$KV`` from being read as variables)."""
    header = "# generated by deploy/devstack/nats_auth.py: one user per service (mode 0600)"
    return _block({user: json.dumps(creds.password(user)) for user in USERS}, header)


def password_variable(user: str) -> str:
    """The environment variable that holds ``user``'s password in Compose (``.env``)."""
    return f"NATS_{user.upper()}_PASSWORD"


def compose_block() -> str:
    """The same block for Docker Compose (``deploy/docker/nats-authorization.conf``): each password
    is a variable nats-server reads from its environment, which Compose fills from ``.env``."""
    header = (
        "# generated by `python -m devstack.nats_auth --compose FILE` (deploy/devstack/nats_auth.py);\n"
        "# do not edit. One user per service; each password comes from the environment (.env)."
    )
    return _block({user: f"${password_variable(user)}" for user in USERS}, header)


def _block(passwords: dict[str, str], header: str) -> str:
    lines = []
    for user in USERS:
        perms = json.dumps(permissions(user), sort_keys=True)
        name = json.dumps(user)
        lines.append(f'    {{"user": {name}, "password": {passwords[user]}, "permissions": {perms}}}')
    body = ",\n".join(lines)
    return f"{header}\nauthorization {{\n  timeout: 5\n  users: [\n{body}\n  ]\n}}\n"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--compose":
        Path(argv[1]).write_text(compose_block())
        return 0
    if len(argv) != 1:
        print("usage: python -m devstack.nats_auth DIR | --compose FILE", file=sys.stderr)  # noqa: T201
        return 2
    creds = ensure_credentials(Path(argv[0]))
    print(f"bus credentials in {creds.directory} ({', '.join(USERS)}; {CONF_NAME})")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
