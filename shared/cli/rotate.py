"""`rotate-keys --cluster ID [--public-key FILE]`: a new node SSH key for one cluster now, through
the app's own orchestrations in-process. Generated keys need a key store (WARDEN_KEYVAULT_URL);
a supplied public key is validated first. Bad input exits 2 and nothing is written."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli import BadInput
from shared.cli.output import Column
from shared.cli.run import RunResult, error_entry, local_functions, outcome_row, run_to_end, show_run
from shared.config import Settings
from shared.core.errors import KeyMaterialError
from shared.core.protocol import WorkKind
from shared.keys import parse_public_key
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.orchestration.key_steps import NO_KEY_STORE
from shared.triggers.http_api import BadRequest, reconcile_target
from shared.triggers.start import StartError, request_work

ACTOR = "cli"
ROTATIONS_SHAPE = (
    '{"rotations": [{"clusterId", "cluster", "outcome", "oldFingerprint", "fingerprint", "poolsReimaged", '
    '"reason"}], "errors": [{"target", "code", "message"}], "left": [...], "stopped": null | why}'
)
COLUMNS = (
    Column("CLUSTER"),
    Column("OUTCOME"),
    Column("OLD KEY", drop=2, flex=True),
    Column("NEW KEY", flex=True),
    Column("POOLS REIMAGED", drop=1),
    Column("REASON", flex=True),
)


def run_rotate(args: argparse.Namespace, keystore=None) -> int:
    """`keystore`: a local key store instead of Key Vault (the demo's, which says so)."""
    settings = Settings.from_env()
    try:
        target = reconcile_target({"cluster": args.cluster})
    except BadRequest as e:
        raise BadInput(f"{e.code}: {e.message}") from e
    public_key = _supplied_key(args.public_key) if args.public_key else ""
    with local_functions(settings, args, keystore) as functions:
        if not public_key and runtime.runtime().keystore is None:
            raise BadInput(NO_KEY_STORE)
        errors = functions.with_client(lambda client: _request(client, target, public_key))
        result = run_to_end(functions, args.timeout)
        result.errors += errors
        return report_rotations(functions, args, result)


def _supplied_key(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read the public key {path!r}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return parse_public_key(text).openssh
    except KeyMaterialError as e:
        raise BadInput(f"{path}: {e}") from None


async def _request(client, target, public_key: str) -> list[dict]:
    rt = runtime.runtime()
    try:
        reason = "rotate-keys from the command line" + (" with a supplied key" if public_key else "")
        await request_work(client, rt.store, target, reason, ACTOR, WorkKind.ROTATE_KEYS, public_key)
    except StartError as e:
        return [error_entry(target.cluster.id, "RotationNotStarted", str(e))]
    return []


def report_rotations(functions: LocalFunctions, args: argparse.Namespace, result: RunResult) -> int:
    for status in functions.durable.statuses():
        if status.name == names.ROTATE_KEYS and isinstance(status.output, dict):
            where = outcome_row(status.input["cluster"], {"outcome": status.output["outcome"]})
            row = {"clusterId": where["clusterId"], "cluster": where["cluster"], **status.output}
            result.rows.append(row)
            if error := status.output.get("error"):
                result.errors.append(error_entry(row["clusterId"], error.get("code", ""), error.get("message", "")))
    fields = ("cluster", "outcome", "oldFingerprint", "fingerprint", "poolsReimaged", "reason")
    show_run(args, "rotations", result, COLUMNS, [tuple(r.get(f) for f in fields) for r in result.rows])
    return result.exit_code(any(r["outcome"] == "failed" for r in result.rows))
