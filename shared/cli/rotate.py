"""`rotate-keys --cluster ID [--public-key FILE]`: a new node SSH key for one cluster now, through
the app's own orchestrations in-process. Generated keys need a key store (WARDEN_KEYVAULT_URL);
a supplied public key is validated first. Bad input exits 2 and nothing is written."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.cli import EXIT_FAILED, EXIT_OK, BadInput
from shared.cli.run import local_functions
from shared.config import Settings
from shared.errors import KeyMaterialError
from shared.keys import parse_public_key
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.orchestration.key_steps import NO_KEY_STORE
from shared.protocol import WorkKind
from shared.report import table
from shared.triggers.http_api import BadRequest, reconcile_target
from shared.triggers.start import StartError, request_work

ACTOR = "cli"


def run_rotate(args: argparse.Namespace, keystore=None) -> int:
    """`keystore`: a local key store instead of Key Vault (the demo's, which says so)."""
    settings = Settings.from_env()
    try:
        target = reconcile_target({"cluster": args.cluster})
    except BadRequest as e:
        raise BadInput(f"{e.code}: {e.message}") from e
    public_key = _supplied_key(args.public_key) if args.public_key else ""
    with local_functions(settings, keystore) as functions:
        if not public_key and runtime.runtime().keystore is None:
            raise BadInput(NO_KEY_STORE)
        errors = functions.with_client(lambda client: _request(client, target, public_key))
        functions.run()
        return report_rotations(functions, args.json, errors)


def _supplied_key(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read the public key {path!r}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return parse_public_key(text).openssh
    except KeyMaterialError as e:
        raise BadInput(f"{path}: {e}") from None


async def _request(client, target, public_key: str) -> list[str]:
    rt = runtime.runtime()
    try:
        reason = "rotate-keys from the command line" + (" with a supplied key" if public_key else "")
        await request_work(client, rt.store, target, reason, ACTOR, WorkKind.ROTATE_KEYS, public_key)
    except StartError as e:
        return [str(e)]
    return []


def report_rotations(functions: LocalFunctions, as_json: bool, errors: list[str]) -> int:
    rows = []
    for status in functions.durable.statuses():
        if status.name == names.ROTATE_KEYS and isinstance(status.output, dict):
            cluster = status.input["cluster"]
            rows.append({"cluster": f"{cluster['resourceGroup']}/{cluster['name']}", **status.output})
    if as_json:
        print(json.dumps({"rotations": rows, "errors": errors}, indent=2))
    else:
        columns = ("CLUSTER", "OUTCOME", "OLD KEY", "NEW KEY", "POOLS REIMAGED", "REASON")
        fields = ("cluster", "outcome", "oldFingerprint", "fingerprint", "poolsReimaged", "reason")
        print(table(columns, [tuple(_text(r.get(f)) for f in fields) for r in rows]))
    for error in errors:
        print(f"failed: {error}", file=sys.stderr)
    return EXIT_FAILED if errors or any(r["outcome"] == "failed" for r in rows) else EXIT_OK


def _text(value) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value or "")
