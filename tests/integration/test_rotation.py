"""Key rotation end to end: the worker, the emulator's cluster PUT, node-image upgrades of the
LocalUser pools, the records — with a supplied key, and refusals that write nothing."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from shared.adapters.store import WardenStore
from shared.cli import main
from shared.core.protocol import WorkKind
from shared.keys import fingerprint
from shared.orchestration import names
from tests.warden_fixtures import DEV, PROD, set_cli_env

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"


def openssh(key) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


RSA_3072 = openssh(rsa.generate_private_key(65537, 3072).public_key())


def cluster_key(emulator, cluster=DEV) -> str:
    return emulator.cluster_body(cluster.id)["properties"]["linuxProfile"]["ssh"]["publicKeys"][0]["keyData"]


def rotate(w, cluster=DEV, public_key: str = "") -> None:
    from shared.core.models import Target
    from shared.triggers.start import request_work

    async def ask(client):
        await request_work(client, w.runtime.store, Target(cluster), "test", "tester", WorkKind.ROTATE_KEYS, public_key)

    w.functions.with_client(ask)
    w.functions.run()


def test_a_supplied_key_is_put_once_and_only_local_user_pools_are_reimaged(warden, arm_emulator):
    # batch's nodes run sshd though it is Disabled: ignored here, so the verification after the
    # rotation does not re-enforce it (that is the verification's own test)
    w = warden({"default": "Disabled", "rules": [{"name": "b", "match": {"pool": "batch"}, "sshAccess": "ignore"}]})
    before = arm_emulator.cluster_body(DEV.id)
    old = fingerprint(cluster_key(arm_emulator))
    rotate(w, public_key=RSA_3072)
    assert cluster_key(arm_emulator) == RSA_3072, "the key is PUT as given"
    after = arm_emulator.cluster_body(DEV.id)
    kept = {k for k in before["properties"] if k not in ("linuxProfile", "provisioningState", "agentPoolProfiles")}
    assert {k: after["properties"].get(k) for k in kept} == {k: before["properties"][k] for k in kept}
    assert w.writes() == [("PUT", "managedClusters/aks-dev-weu"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    [done] = [r for r in w.runtime.store.list_key_rotations(DEV.key) if r.outcome.value != "planned"]
    assert (done.outcome.value, done.old_fingerprint, done.fingerprint) == ("succeeded", old, fingerprint(RSA_3072))
    assert (done.source, done.pools_reimaged, done.secret_id) == ("supplied", "nodepool1", "")
    assert "spot: sshAccess EntraId" in done.message and "vmpool" in done.message
    verified = [s for s in w.functions.durable.statuses() if s.name == names.VERIFY_CLUSTER]
    assert [s.input["pools"] for s in verified] == [None], "the rotation has the whole cluster verified next"
    assert w.runtime.store.list_requests(DEV.key) == []


def test_a_rotation_in_audit_mode_writes_nothing(warden, arm_emulator):
    w = warden(mode="audit")
    rotate(w, public_key=RSA_3072)
    assert w.writes() == []
    [row] = [r for r in w.audit() if r.step == "rotate-keys"]
    assert row.outcome.value == "skipped" and "WARDEN_MODE is audit" in row.message


def test_an_automatic_cluster_is_refused_with_the_reason(warden, arm_emulator):
    from shared.core.models import ClusterRef
    from tests.emulator_fixtures import SUB_B

    w = warden(WARDEN_SUBSCRIPTIONS=f"{DEV.subscription},{SUB_B}")
    auto = ClusterRef(SUB_B, "rg-prod-neu", "aks-auto-neu")
    rotate(w, auto, RSA_3072)
    assert w.writes() == []
    [row] = [r for r in w.runtime.store.list_audit(auto.key) if r.step == "rotate-keys"]
    assert row.outcome.value == "failed" and "AKS Automatic" in row.message


@pytest.fixture
def cli_env(monkeypatch, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite)
    yield
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


def test_no_key_store_and_no_key_is_exit_2_with_nothing_written(cli_env, monkeypatch, arm_emulator, capsys):
    monkeypatch.delenv("WARDEN_KEYVAULT_URL", raising=False)
    assert main(["rotate-keys", "--cluster", DEV.id]) == 2
    assert "no key store" in capsys.readouterr().err
    assert [r for r in arm_emulator.requests if r.method != "GET"] == []


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (openssh(ed25519.Ed25519PrivateKey.generate().public_key()), "AKS accepts only ssh-rsa"),
        (openssh(rsa.generate_private_key(65537, 1024).public_key()), "at least 2048"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "private key"),
        ("junk", "not an OpenSSH public key"),
    ],
    ids=["ed25519", "rsa-1024", "private-key", "junk"],
)
def test_an_unusable_supplied_key_is_exit_2_with_nothing_written(cli_env, arm_emulator, capsys, tmp_path, key, message):
    path = tmp_path / "key.pub"
    path.write_text(key)
    assert main(["rotate-keys", "--cluster", DEV.id, "--public-key", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert [r for r in arm_emulator.requests if r.method != "GET"] == []


def test_cli_rotation_with_a_supplied_key(cli_env, arm_emulator, capsys, tmp_path):
    path = tmp_path / "key.pub"
    path.write_text(RSA_3072 + " someone@example\n")
    assert main(["rotate-keys", "--cluster", PROD.id, "--public-key", str(path), "--json"]) == 0
    [rotation] = json.loads(capsys.readouterr().out)["rotations"]
    assert (rotation["outcome"], rotation["fingerprint"]) == ("succeeded", fingerprint(RSA_3072))
    assert rotation["poolsReimaged"] == ["apps"]
    assert cluster_key(arm_emulator, PROD) == RSA_3072


def test_a_failed_cluster_put_leaves_the_old_key_current_and_a_rerun_completes(warden, arm_emulator):
    w = warden()
    old = cluster_key(arm_emulator)
    arm_emulator.faults.arm("PUT", r"/managedClusters/aks-dev-weu$", 400, code="InvalidParameter", message="Injected.")
    rotate(w, public_key=RSA_3072)
    assert cluster_key(arm_emulator) == old
    assert [m for m, _ in w.writes()] == ["PUT"], "no reimage after a failed key change"
    [failed] = [r for r in w.runtime.store.list_key_rotations(DEV.key) if r.outcome.value == "failed"]
    assert failed.old_fingerprint == fingerprint(old) and "kept its old key" in failed.message
    assert not [r for r in w.runtime.store.list_key_rotations(DEV.key) if r.outcome.value == "succeeded"]

    rotate(w, public_key=RSA_3072)
    assert cluster_key(arm_emulator) == RSA_3072
    [done] = [r for r in w.runtime.store.list_key_rotations(DEV.key) if r.outcome.value == "succeeded"]
    assert done.fingerprint == fingerprint(RSA_3072)


def test_a_rotation_asked_during_a_reconcile_waits_for_it(warden, arm_emulator):
    """The worker runs one item at a time: the cluster PUT never overlaps the pool's operations."""
    from tests.warden_fixtures import arm_event

    w = warden()
    asked = []

    def during_the_reconcile(event) -> None:
        if event.kind == "activity" and event.activity.startswith("start_ssh_update") and not asked:
            from shared.core.records import WorkRequest

            asked.append(
                w.runtime.store.add_request(WorkRequest(DEV.id, "", event.at, WorkKind.ROTATE_KEYS, argument=RSA_3072))
            )

    w.on_progress = during_the_reconcile
    w.deliver(arm_event(NODEPOOL1))
    assert [a.value for a in asked] == ["joined"]
    writes = [f"{m} {path}" for m, path in w.writes()]
    put_cluster = writes.index("PUT managedClusters/aks-dev-weu")
    assert writes[:put_cluster] == ["PUT agentPools/nodepool1", "POST nodepool1/upgradeNodeImageVersion"]
    # nodepool1 is Disabled by then: its nodes take no SSH key, so the rotation reimages nothing
    assert writes[put_cluster + 1 :] == []
    assert cluster_key(arm_emulator) == RSA_3072


def http(w, function: str, body) -> tuple[int, dict]:
    response = w.functions.http(function, "POST", "http://localhost/api/x", body)
    return response.status_code, json.loads(response.get_body())


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"cluster": DEV.id, "publicKey": "junk"}, 400, "InvalidPublicKey"),
        (
            {"cluster": DEV.id, "publicKey": openssh(ed25519.Ed25519PrivateKey.generate().public_key())},
            400,
            "InvalidPublicKey",
        ),
        ({"cluster": DEV.id, "publicKey": 5}, 400, "InvalidPublicKey"),
        ({"cluster": DEV.id}, 400, "NoKeyStore"),
        ({"cluster": DEV.id, "publicKey": RSA_3072, "extra": 1}, 400, "InvalidBody"),
        ({"cluster": DEV.id.replace(DEV.subscription, "99999999-9999-9999-9999-999999999999")}, 403, "OutOfScope"),
    ],
    ids=["junk", "ed25519", "not-a-string", "no-key-store", "unknown-field", "out-of-scope"],
)
def test_http_rotate_keys_refuses_bad_requests_before_any_write(warden, arm_emulator, body, status, code):
    from shared.triggers.http_api import ROTATE_FUNCTION

    w = warden()
    got, answer = http(w, ROTATE_FUNCTION, body)
    assert (got, answer["error"]["code"]) == (status, code)
    assert arm_emulator.requests == [] and w.runtime.store.list_requests(DEV.key) == []


def test_http_rotate_keys_and_verify_answer_202_and_run_as_cluster_work(warden, arm_emulator):
    from shared.triggers.http_api import ROTATE_FUNCTION, VERIFY_FUNCTION

    w = warden()
    response = w.functions.http(
        ROTATE_FUNCTION, "POST", "http://localhost/api/rotate-keys", {"cluster": DEV.id, "publicKey": RSA_3072}
    )
    assert response.status_code == 202 and "statusQueryGetUri" in json.loads(response.get_body())
    response = w.functions.http(VERIFY_FUNCTION, "POST", "http://localhost/api/verify", {"cluster": DEV.id})
    assert response.status_code == 202
    w.functions.run()
    assert cluster_key(arm_emulator) == RSA_3072
    assert [r.outcome.value for r in w.audit() if r.step == "rotate-keys"] == ["succeeded"]
    assert {r.step for r in w.audit()} >= {"rotate-keys", "verify"}


# --- generated keys: the private half in Key Vault (the HTTPS fake), nowhere else --------------------


def test_a_generated_key_is_stored_before_the_put_and_no_private_key_shows_anywhere(
    warden, arm_emulator, keyvault, keyvault_store, receiver, caplog, capsys
):
    import logging

    from shared.cli.rotate import report_rotations
    from shared.cli.run import RunResult
    from shared.keys import parse_public_key, public_key_of

    caplog.set_level(logging.DEBUG)
    w = warden(store_options={"keystore": keyvault_store}, WARDEN_EVENTS_ENDPOINT=receiver.url)
    stored_before_put = []

    def before_the_put(event) -> None:
        if event.kind == "activity" and event.activity == "start_key_update_activity":
            stored_before_put.append([v for _, versions in keyvault.secrets.values() for v in versions])

    w.on_progress = before_the_put
    rotate(w)
    new_key = parse_public_key(cluster_key(arm_emulator))
    assert new_key.bits >= 3072 and new_key.openssh.startswith("ssh-rsa ")
    assert [m for m, path in w.writes() if path.endswith("aks-dev-weu")] == ["PUT"], "exactly one cluster PUT"
    [[stored]] = stored_before_put
    assert public_key_of(stored.value).fingerprint == new_key.fingerprint, "the private half was in Key Vault first"
    assert stored.tags["fingerprint"] == new_key.fingerprint and stored.tags["clusterId"].lower() == DEV.key

    report_rotations(w.functions, argparse.Namespace(json=True, wide=False), RunResult())  # what the CLI prints
    printed = capsys.readouterr()
    everything = "\n".join(
        [
            caplog.text,
            printed.out + printed.err,
            json.dumps(receiver.events),
            json.dumps(
                [w.functions.durable.history(s.instance_id) for s in w.functions.durable.statuses()], default=str
            ),
            *(json.dumps(r, default=str) for r in _all_rows(w)),
        ]
    )
    secret_body = "".join(stored.value.splitlines()[1:-1])
    for chunk in (secret_body[i : i + 40] for i in range(0, len(secret_body) - 40, 200)):
        assert chunk not in everything
    assert "PRIVATE KEY" not in everything
    [done] = [r for r in w.runtime.store.list_key_rotations(DEV.key) if r.outcome.value == "succeeded"]
    assert (done.secret_id, done.source, done.fingerprint) == (stored.id, "generated", new_key.fingerprint)


def _all_rows(w) -> list:
    store = w.runtime.store
    return [
        *store.list_audit(),
        *store.list_key_rotations(),
        *store.list_pool_states(),
        *store.list_node_checks(),
        *store.list_requests(DEV.key),
    ]


def test_the_new_key_is_proven_on_the_reimaged_nodes_and_a_stale_one_is_drift(warden, arm_emulator):
    """The verification after a rotation asks the LocalUser nodes for their authorized keys:
    the reimaged ones hold the new key. A key changed on the cluster by hand, without a reimage,
    leaves the nodes on the old one: drift, then a reimage puts it there."""
    from shared.triggers.start import request_work

    w = warden(
        {"default": "Disabled", "rules": [{"name": "keep", "match": {"pool": "nodepool1"}, "sshAccess": "LocalUser"}]}
    )
    rotate(w, public_key=RSA_3072)
    checks = [c for c in w.runtime.store.list_node_checks(DEV.key) if c.pool == "nodepool1"]
    assert checks and {c.verdict for c in checks} == {"ok"}
    assert all("holds the cluster's key" in c.reason for c in checks)

    # By hand (az aks update --ssh-key-value): the cluster's key changes, the nodes keep theirs.
    other = openssh(rsa.generate_private_key(65537, 3072).public_key())
    w.runtime.arm.set_cluster_ssh_key(w.runtime.arm.cluster_to_write(DEV), other)
    # Past the cooldown after the rotation's own reimage, so drift is re-enforced again.
    w.clock.advance_to(w.clock.now() + timedelta(hours=7))

    async def verify(client):
        from shared.core.models import Target

        await request_work(client, w.runtime.store, Target(DEV, "nodepool1"), "test", "tester", WorkKind.VERIFY)

    w.functions.with_client(verify)
    w.functions.run()
    latest = [c for c in w.runtime.store.list_node_checks(DEV.key) if c.pool == "nodepool1"]
    assert any(c.verdict == "drift" and "does not hold the cluster's key" in c.reason for c in latest)
    assert latest[-1].verdict == "ok", "the drift's reconcile reimaged the pool, and its nodes took the key"
