"""Auth benchmarks: argon2id cost per hash, login latency (p50/p95) with 20 concurrent clients
through the gateway, and the gateway's local token verification rate.

Starts its own stack on free ports unless ``--gateway URL --nats URL --mail URL`` name a running
one (whose first verified account must then be given with ``--admin EMAIL:PASSWORD``).
Run: ``.venv/bin/python bench/auth_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _report import bar_panels, write_report
from argon2 import PasswordHasher, Type

from chainchat_auth.settings import AuthSettings
from chainchat_gateway.security import TokenVerifier
from chainchat_service.bus import Bus
from devstack.stack import Stack, free_ports

PASSWORD = "bench-passphrase-4242"
CLIENTS = 20


def bench_argon2(rounds: int) -> dict[str, float]:
    """Milliseconds per argon2id hash with the service's default parameters."""
    s = AuthSettings(_env_file=None)  # type: ignore[call-arg]
    hasher = PasswordHasher(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism, type=Type.ID)
    hasher.hash("warm-up")
    started = time.perf_counter()
    for _ in range(rounds):
        hasher.hash(PASSWORD)
    return {
        "ms_per_hash": (time.perf_counter() - started) / rounds * 1000,
        "time_cost": s.argon2_time_cost,
        "memory_kib": s.argon2_memory_kib,
        "parallelism": s.argon2_parallelism,
    }


async def _verify_link(http: httpx.AsyncClient, mail_url: str, email: str) -> str:
    for _ in range(300):
        mails = (await http.get(f"{mail_url}/api/email")).json()
        for mail in mails:
            if any(t["address"] == email for t in mail["to"]):
                match = re.search(r"verify\?token=([A-Za-z0-9_-]+)", mail["text"])
                if match:
                    resp = await http.post("/api/v1/auth/verify", json={"token": match.group(1)})
                    status: str = resp.json()["status"]
                    return status
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no verification mail for {email}")


async def make_users(http: httpx.AsyncClient, mail_url: str, admin: tuple[str, str] | None) -> list[str]:
    """An admin (first verified account) plus CLIENTS approved members; returns their e-mails."""
    if admin is None:
        email = f"bench-admin-{uuid.uuid4().hex[:8]}@example.test"
        body = {"email": email, "password": PASSWORD, "display_name": "Bench Admin"}
        await http.post("/api/v1/auth/register", json=body)
        assert await _verify_link(http, mail_url, email) == "active", "the stack already has an admin"
        admin = (email, PASSWORD)
    login = await http.post("/api/v1/auth/login", json={"email": admin[0], "password": admin[1]})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    emails = []
    for n in range(CLIENTS):
        email = f"bench-{n}-{uuid.uuid4().hex[:8]}@example.test"
        reply = await http.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": f"Bench {n}"}
        )
        if await _verify_link(http, mail_url, email) == "pending_approval":
            await http.post(f"/api/v1/admin/users/{reply.json()['user_id']}/approve", headers=headers)
        emails.append(email)
    return emails


async def bench_logins(http: httpx.AsyncClient, emails: list[str], per_client: int) -> dict[str, Any]:
    """Each of CLIENTS clients logs in ``per_client`` times back to back."""
    latencies: list[float] = []
    failures: dict[str, int] = {}

    async def client(email: str) -> None:
        for _ in range(per_client):
            started = time.perf_counter()
            resp = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            latencies.append((time.perf_counter() - started) * 1000)
            if resp.status_code != 200:  # e.g. 503 when auth cannot answer within the gateway's timeout
                failures[str(resp.status_code)] = failures.get(str(resp.status_code), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(e) for e in emails))
    wall = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "clients": len(emails),
        "logins": len(latencies),
        "mean_ms": statistics.mean(latencies),
        "p50_ms": statistics.median(latencies),
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "logins_per_s": len(latencies) / wall,
        "failures": failures,
    }


async def bench_verifier(nats_url: str, token: str, rounds: int) -> dict[str, float]:
    """Local verifications per second (the JWKS fetched once over NATS)."""
    bus = Bus(nats_url, "auth-bench")
    await bus.connect()
    try:
        verifier = TokenVerifier(bus)
        await verifier.refresh_keys()
        await verifier.verify(token)
        started = time.perf_counter()
        for _ in range(rounds):
            await verifier.verify(token)  # a client's next requests: verified-token cache
        cached = rounds / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(rounds // 4):
            verifier._verified.clear()  # a token seen for the first time: the Ed25519 check
            await verifier.verify(token)
        first = (rounds // 4) / (time.perf_counter() - started)
        return {"verifications_per_s": cached, "first_sight_verifications_per_s": first}
    finally:
        await bus.close()


async def run(args: argparse.Namespace, gateway: str, nats_url: str, mail_url: str) -> dict[str, Any]:
    admin = tuple(args.admin.split(":", 1)) if args.admin else None
    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as http:
        emails = await make_users(http, mail_url, admin)  # type: ignore[arg-type]
        logins = await bench_logins(http, emails, 3 if args.quick else 15)
        token = (
            await http.post("/api/v1/auth/login", json={"email": emails[0], "password": PASSWORD})
        ).json()
    verifier = await bench_verifier(nats_url, token["access_token"], 2000 if args.quick else 20000)
    return {"login": logins, "verifier": verifier}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gateway")
    parser.add_argument("--nats")
    parser.add_argument("--mail")
    parser.add_argument("--admin", help="EMAIL:PASSWORD of the running stack's admin")
    args = parser.parse_args()
    argon = bench_argon2(5 if args.quick else 30)
    if args.gateway:
        results = asyncio.run(run(args, args.gateway, args.nats, args.mail))
    else:
        with tempfile.TemporaryDirectory(prefix="auth-bench-") as tmp:
            # ENVIRONMENT=test: sign-up limits per IP are relaxed (every bench client is 127.0.0.1)
            stack = Stack(var_dir=Path(tmp), ports=free_ports(), environment="test")
            try:
                stack.start()
                stack.wait_ready(timeout=120)
                results = asyncio.run(
                    run(args, stack.gateway_url, stack.nats.client_url(), stack.mail.web_url)
                )
            finally:
                stack.stop()
    # a shared machine skews every number: record how busy it was
    data = {"argon2id": argon, **results, "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    write_report("auth_bench", data)
    verifier = results["verifier"]
    bar_panels(
        "auth_bench",
        [
            (f"login latency, {CLIENTS} concurrent clients", "ms", {
                q: results["login"][f"{q}_ms"] for q in ("p50", "p95", "p99")
            }),
            ("throughput", "per second", {
                "logins": results["login"]["logins_per_s"],
                "cached token checks / 10,000": verifier["verifications_per_s"] / 10_000,
                "first-sight verifications / 100": verifier["first_sight_verifications_per_s"] / 100,
            }),
            ("argon2id cost", "ms per hash", {"hash": argon["ms_per_hash"]}),
        ],
    )  # fmt: skip
    login, rate = results["login"], results["verifier"]["verifications_per_s"]
    print(f"argon2id {argon['ms_per_hash']:.1f} ms/hash; login p50 {login['p50_ms']:.0f} ms")
    first = results["verifier"]["first_sight_verifications_per_s"]
    print(
        f"login p95 {login['p95_ms']:.0f} ms; {rate:,.0f} token verifications/s ({first:,.0f}/s first sight)"
    )


if __name__ == "__main__":
    main()
