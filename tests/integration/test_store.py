"""`WardenStore` against a real Azurite over HTTP, with the real azure-data-tables client."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from shared.adapters.store import (
    MAX_TRANSACTION_OPERATIONS,
    StoreError,
    StoreNotFoundError,
    WardenStore,
)
from shared.core.errors import ConfigError, StoreConflictError
from shared.core.models import ClusterRef
from shared.core.records import AuditRecord, KeyRotation, NodeCheck, Outcome, PoolState, PoolStatus
from shared.local import azurite as azurite_launcher

SUB = "00000000-0000-0000-0000-000000000001"
CLUSTER_A = ClusterRef(SUB, "rg-A", "aks-a")
CLUSTER_B = ClusterRef(SUB, "rg-B", "aks-b")
# Not valid in ARM, but ids reach the store from events and users: keys must survive anything.
ODD_CLUSTER = ClusterRef(SUB, "rg/with\\odd#chars?", "c'1%2F\t|x")
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
FINGERPRINT = "SHA256:" + "b" * 43


def pool_state(cluster: ClusterRef = CLUSTER_A, pool: str = "np1", **changes) -> PoolState:
    state = PoolState(cluster.id, pool, "Disabled", "LocalUser", PoolStatus.DRIFTED, reason="policy says Disabled")
    return replace(state, **changes)


def audit(cluster: ClusterRef, index: int, time: datetime = T0, **changes) -> AuditRecord:
    record = AuditRecord(time, cluster.id, "set-ssh-access", Outcome.PLANNED, pool="np1", message=f"#{index}")
    return replace(record, **changes)


def node_check(cluster: ClusterRef, instance: str, time: datetime, active: bool) -> NodeCheck:
    return NodeCheck(
        cluster.id,
        "np1",
        "aks-np1-12345678-vmss",
        instance,
        time,
        "Disabled",
        sshd_active=active,
        sshd_enabled=active,
        drift=active,
        output_excerpt="active\nenabled",
    )


# --- pool state -------------------------------------------------------------------------


def test_pool_state_round_trip_keeps_every_field(store):
    state = pool_state(
        status=PoolStatus.PENDING_REIMAGE,
        pending_reimage=True,
        last_upgrade_time=T0,
        last_upgrade_operation_id="op-1",
        last_verified_time=T0 + timedelta(minutes=5),
        nodes_checked=3,
        nodes_drifted=2**40,
        verification_summary="3 nodes, sshd active on all",
        updated_time=T0,
    )
    etag = store.put_pool_state(state)
    read = store.get_pool_state(CLUSTER_A.key, "np1")
    assert read == state
    assert read.etag == etag
    assert read.last_upgrade_time.tzinfo is UTC and read.nodes_drifted == 2**40


def test_put_stamps_updated_time_when_missing(store):
    before = datetime.now(UTC)
    store.put_pool_state(pool_state())
    assert store.get_pool_state(CLUSTER_A.key, "np1").updated_time >= before - timedelta(seconds=1)


def test_update_with_current_etag_succeeds_and_stale_etag_conflicts(store):
    first_etag = store.put_pool_state(pool_state())
    second_etag = store.put_pool_state(pool_state(status=PoolStatus.COMPLIANT), etag=first_etag)
    assert second_etag != first_etag
    with pytest.raises(StoreConflictError, match="pool state .*changed concurrently.*412"):
        store.put_pool_state(pool_state(status=PoolStatus.DRIFTED), etag=first_etag)
    assert store.get_pool_state(CLUSTER_A.key, "np1").status is PoolStatus.COMPLIANT


def test_create_without_etag_conflicts_when_someone_created_it(store):
    store.put_pool_state(pool_state(reason="first writer"))
    with pytest.raises(StoreConflictError, match="409"):
        store.put_pool_state(pool_state(reason="second writer"))
    assert store.get_pool_state(CLUSTER_A.key, "np1").reason == "first writer"


def test_get_missing_pool_state_raises_not_found(store):
    with pytest.raises(StoreNotFoundError, match="'np9'.*404"):
        store.get_pool_state(CLUSTER_A.key, "np9")


def test_list_pool_states_filters_by_cluster(store):
    for cluster, pool in [(CLUSTER_A, "np1"), (CLUSTER_A, "np2"), (CLUSTER_B, "np1")]:
        store.put_pool_state(pool_state(cluster, pool))
    in_a = store.list_pool_states(CLUSTER_A.key)
    assert [(s.cluster_id, s.pool) for s in in_a] == [(CLUSTER_A.id, "np1"), (CLUSTER_A.id, "np2")]
    assert all(s.etag for s in in_a), "listed rows carry ETags for a later conditional write"
    assert len(store.list_pool_states()) == 3
    assert store.list_pool_states(ClusterRef(SUB, "rg-x", "none").key) == []


def test_odd_characters_in_ids_survive_as_keys(store):
    store.put_pool_state(pool_state(ODD_CLUSTER, "np'#?/1"))
    store.put_pool_state(pool_state(CLUSTER_A, "np1"))
    read = store.get_pool_state(ODD_CLUSTER.key, "np'#?/1")
    assert (read.cluster_id, read.pool) == (ODD_CLUSTER.id, "np'#?/1")
    assert [s.pool for s in store.list_pool_states(ODD_CLUSTER.key)] == ["np'#?/1"]
    store.append_audit([audit(ODD_CLUSTER, 1)])
    assert [r.cluster_id for r in store.list_audit(ODD_CLUSTER.key)] == [ODD_CLUSTER.id]


# --- audit ------------------------------------------------------------------------------


def test_250_rows_of_one_cluster_go_in_three_transactions_in_order(azurite, store):
    batches = []
    hook = lambda response: batches.append(response) if response.http_request.url.endswith("$batch") else None  # noqa: E731
    with WardenStore(azurite, table_prefix=store.table_prefix, raw_request_hook=hook) as counted:
        counted.append_audit([audit(CLUSTER_A, index) for index in range(250)])
    assert len(batches) == 3 and MAX_TRANSACTION_OPERATIONS == 100
    assert [r.message for r in store.list_audit(CLUSTER_A.key)] == [f"#{i}" for i in range(250)]


def test_rows_across_clusters_are_split_per_partition(store):
    records = [audit(CLUSTER_A if index % 3 else CLUSTER_B, index) for index in range(240)]
    store.append_audit(records)
    in_a = store.list_audit(CLUSTER_A.key)
    in_b = store.list_audit(CLUSTER_B.key)
    assert [r.message for r in in_a] == [f"#{i}" for i in range(240) if i % 3]
    assert [r.message for r in in_b] == [f"#{i}" for i in range(240) if not i % 3]
    assert len(store.list_audit()) == 240


def test_audit_lists_in_time_order_whatever_the_write_order(store):
    store.append_audit([audit(CLUSTER_A, 2, T0 + timedelta(seconds=2)), audit(CLUSTER_A, 0, T0)])
    store.append_audit([audit(CLUSTER_A, 1, T0 + timedelta(seconds=1)), audit(CLUSTER_B, 3, T0 + timedelta(seconds=3))])
    store.append_audit([audit(CLUSTER_A, 4, T0 + timedelta(seconds=2))])  # same time as #2, written later
    assert [r.message for r in store.list_audit(CLUSTER_A.key)] == ["#0", "#1", "#2", "#4"]
    assert [r.message for r in store.list_audit()] == ["#0", "#1", "#2", "#4", "#3"]


def test_audit_since_filter(store):
    store.append_audit([audit(CLUSTER_A, i, T0 + timedelta(minutes=i)) for i in range(5)])
    since = T0 + timedelta(minutes=3)
    assert [r.message for r in store.list_audit(CLUSTER_A.key, since=since)] == ["#3", "#4"]
    assert [r.message for r in store.list_audit(since=since)] == ["#3", "#4"]


def test_a_keyed_single_row_is_one_insert_written_once_and_listed_in_time_order(store, azurite):
    """A step's one row is its own marker: one plain insert (no transaction), a re-run writes
    nothing, the receipt finds it, and the timeline lists it among the other rows by time."""
    sent = []
    hook = lambda response: sent.append(response.http_request.url)  # noqa: E731
    with WardenStore(azurite, table_prefix=store.table_prefix, raw_request_hook=hook) as counted:
        counted.append_audit([audit(CLUSTER_A, 0, T0)])
        sent.clear()
        assert counted.append_audit([audit(CLUSTER_A, 1, T0 + timedelta(seconds=1))], key="call-1") is True
        assert len(sent) == 1 and not sent[0].endswith("$batch")
        assert counted.append_audit([audit(CLUSTER_A, 9, T0 + timedelta(seconds=9))], key="call-1") is False
    store.append_audit(
        [audit(CLUSTER_A, 2, T0 + timedelta(seconds=2)), audit(CLUSTER_A, 3, T0 + timedelta(seconds=3))], key="call-2"
    )
    assert [r.message for r in store.list_audit(CLUSTER_A.key)] == ["#0", "#1", "#2", "#3"]
    assert [r.message for r in store.list_audit()] == ["#0", "#1", "#2", "#3"]
    assert [r.message for r in store.list_audit(CLUSTER_A.key, since=T0 + timedelta(seconds=1))] == ["#1", "#2", "#3"]
    assert store.step_receipt(CLUSTER_A.key, "call-1").message == "#1"
    assert store.step_receipt(CLUSTER_A.key, "call-2").message == "#3"


def test_audit_round_trip_keeps_every_field(store):
    record = audit(
        CLUSTER_A,
        1,
        outcome=Outcome.FAILED,
        mode_before="LocalUser",
        mode_after="Disabled",
        operation_id="op-7",
        correlation_id="corr-7",
        code="OperationNotAllowed",
        instance_id="warden-123",
        actor="timer",
        attempt=2**33,
    )
    store.append_audit([record])
    assert store.list_audit(CLUSTER_A.key) == [record]


# --- node checks ------------------------------------------------------------------------


def test_node_checks_history_and_latest_per_node(store):
    store.record_node_checks(
        [
            node_check(CLUSTER_A, "0", T0, active=True),
            node_check(CLUSTER_A, "1", T0, active=True),
            node_check(CLUSTER_A, "0", T0 + timedelta(minutes=1), active=False),
        ]
    )
    store.record_node_checks(
        [node_check(CLUSTER_A, "1", T0 + timedelta(hours=6), active=False), node_check(CLUSTER_B, "0", T0, active=True)]
    )
    history = store.list_node_checks(CLUSTER_A.key)
    assert [(c.instance_id, c.time) for c in history] == [
        ("0", T0),
        ("1", T0),
        ("0", T0 + timedelta(minutes=1)),
        ("1", T0 + timedelta(hours=6)),
    ]
    latest = {c.instance_id: c for c in store.latest_node_checks(CLUSTER_A.key)}
    assert set(latest) == {"0", "1"}
    assert latest["0"].time == T0 + timedelta(minutes=1) and latest["0"].sshd_active is False
    assert latest["1"].time == T0 + timedelta(hours=6)
    assert len(store.latest_node_checks()) == 3 and len(store.list_node_checks()) == 5
    assert [c.time for c in store.list_node_checks(CLUSTER_A.key, since=T0 + timedelta(hours=1))] == [
        T0 + timedelta(hours=6)
    ]


def test_many_node_checks_stay_within_the_transaction_limit(store):
    checks = [node_check(CLUSTER_A, str(i % 70), T0 + timedelta(seconds=i), active=False) for i in range(140)]
    store.record_node_checks(checks)  # 140 history rows + 70 latest rows: three transactions
    assert len(store.list_node_checks(CLUSTER_A.key)) == 140
    assert len(store.latest_node_checks(CLUSTER_A.key)) == 70


# --- key rotations ----------------------------------------------------------------------


def test_key_rotations_round_trip_in_order(store):
    later = KeyRotation(
        CLUSTER_A.id,
        T0 + timedelta(days=30),
        FINGERPRINT,
        Outcome.SUCCEEDED,
        secret_id="https://kv.vault.azure.net/secrets/aks-a-ssh/v2",
        secret_version="v2",
        key_bits=4096,
    )
    earlier = replace(later, time=T0, secret_version="v1", outcome=Outcome.FAILED, message="InvalidParameter")
    store.record_key_rotation(later)
    store.record_key_rotation(earlier)
    store.record_key_rotation(replace(earlier, cluster_id=CLUSTER_B.id))
    assert store.list_key_rotations(CLUSTER_A.key) == [earlier, later]
    assert len(store.list_key_rotations()) == 3


# --- setup and failures -----------------------------------------------------------------


def test_ensure_tables_is_idempotent(store):
    store.ensure_tables()
    store.put_pool_state(pool_state())
    store.ensure_tables()
    assert len(store.list_pool_states()) == 1


def test_account_url_with_a_credential_reaches_the_same_tables(azurite, store):
    endpoint = azurite.split("TableEndpoint=")[1].rstrip(";")
    key = azurite.split("AccountKey=")[1].split(";")[0]
    store.put_pool_state(pool_state(updated_time=T0))
    credential = AzureNamedKeyCredential(azurite_launcher.ACCOUNT_NAME, key)
    with WardenStore(endpoint, credential=credential, table_prefix=store.table_prefix) as by_url:
        assert by_url.get_pool_state(CLUSTER_A.key, "np1") == pool_state(updated_time=T0)


def test_missing_tables_are_reported(azurite):
    with (
        WardenStore(azurite, table_prefix="neverCreated", retry_total=0) as fresh,
        pytest.raises(StoreNotFoundError, match="TableNotFound"),
    ):
        fresh.list_pool_states()


def test_unreachable_service_raises_store_error():
    port = azurite_launcher.free_port()
    with (
        WardenStore(azurite_launcher.connection_string(port), retry_total=0) as unreachable,
        pytest.raises(StoreError, match="query WardenPoolState failed") as caught,
    ):
        unreachable.list_pool_states()
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("setting", "prefix", "message"),
    [
        ("DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0", "", "value not shown"),
        ("http://tables.example.com", "", "must be https://"),
        ("", "", "WARDEN_TABLES is empty"),
        (azurite_launcher.connection_string(1), "9bad", "table prefix '9bad' is invalid"),
    ],
    ids=["bad-connection-string", "plain-http-remote", "empty", "bad-prefix"],
)
def test_bad_settings_raise_config_error(setting, prefix, message):
    with pytest.raises(ConfigError, match=message) as caught:
        WardenStore(setting, table_prefix=prefix)
    assert "c2VjcmV0" not in str(caught.value)


# --- launcher ---------------------------------------------------------------------------


def test_launcher_explains_how_to_install_a_missing_binary(monkeypatch, tmp_path):
    monkeypatch.setenv(azurite_launcher.BIN_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(azurite_launcher.AzuriteError, match="npm ci"):
        azurite_launcher.start_azurite()


def test_launcher_reports_the_output_of_a_failed_start(monkeypatch, tmp_path):
    fake = tmp_path / "azurite-table"
    fake.write_text("#!/bin/sh\necho 'listen EACCES: permission denied' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(azurite_launcher.BIN_ENV, str(fake))
    with pytest.raises(azurite_launcher.AzuriteError, match="(?s)exited with code 3.*EACCES"):
        azurite_launcher.start_azurite(workdir=tmp_path / "data")


def test_session_azurite_answers(azurite):
    assert azurite.startswith("DefaultEndpointsProtocol=http;") and "TableEndpoint=http://127.0.0.1:" in azurite


# --- slots and idempotent node checks ------------------------------------------------------------


def test_slots_bound_holders_per_scope_free_on_release_or_expiry(store):
    from datetime import timedelta

    ttl = timedelta(minutes=30)
    handles = [store.acquire_slot("sub-a", f"h{i}", 2, T0, ttl) for i in range(3)]
    assert [h is not None for h in handles] == [True, True, False]
    assert store.acquire_slot("sub-b", "h9", 2, T0, ttl), "another scope has slots of its own"
    assert store.acquire_slot("sub-a", "h1", 2, T0, ttl) == handles[1], "a holder asking again keeps its slot"
    store.release_slot("sub-a", "h0")
    store.release_slot("sub-a", "h0")
    assert store.acquire_slot("sub-a", "h2", 2, T0, ttl)
    assert not store.acquire_slot("sub-a", "h3", 2, T0 + timedelta(minutes=29), ttl)
    assert store.acquire_slot("sub-a", "h3", 2, T0 + timedelta(minutes=31), ttl), "an expired slot is free"


def test_a_slot_given_back_by_its_handle_frees_only_the_slot_as_its_holder_took_it(store):
    from datetime import timedelta

    ttl = timedelta(minutes=30)
    mine = store.acquire_slot("sub-a", "h0", 1, T0, ttl)
    store.release_slot("sub-a", "h0", mine)
    assert store.slot_holders("sub-a", T0) == [], "released without a look at the partition"
    again = store.acquire_slot("sub-a", "h0", 1, T0, ttl)
    later = T0 + timedelta(minutes=31)
    assert store.acquire_slot("sub-a", "h1", 1, later, ttl), "h0's slot expired: h1 took it over"
    store.release_slot("sub-a", "h0", again)  # h0 comes back late with its old handle
    assert store.slot_holders("sub-a", later) == ["h1"], "a slot taken over after it expired stays its new holder's"
    store.release_slot("sub-a", "h0", again)  # releasing twice is fine


def test_node_checks_written_with_a_key_are_written_once(store):
    check = NodeCheck(CLUSTER_A.id, "nodepool1", "aks-nodepool1-1-vmss", "0", T0, "Disabled", verdict="ok")
    other = replace(check, instance_id="1", verdict="drift", drift=True)
    store.record_node_checks([check, other], key="0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    store.record_node_checks([check, other], key="0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    assert [(c.instance_id, c.verdict) for c in store.list_node_checks(CLUSTER_A.key)] == [("0", "ok"), ("1", "drift")]
    assert len(store.latest_node_checks(CLUSTER_A.key)) == 2


def test_finished_requests_go_together_and_a_renewed_one_stays(azurite, store):
    from shared.core.protocol import WorkKind
    from shared.core.records import WorkRequest

    for pool in ("a", "b", "c"):
        store.add_request(WorkRequest(CLUSTER_A.id, pool, T0, WorkKind.VERIFY, "after a remediation", "warden"))
    leased, _ = store.lease_requests(CLUSTER_A.key, "lease-1")
    rows = [(r.stored_key, r.etag) for r in leased]
    sent = []
    with WardenStore(azurite, table_prefix=store.table_prefix, raw_request_hook=sent.append) as counted:
        assert counted.finish_requests(CLUSTER_A.key, rows[:2]) == 2
    assert len(sent) == 1, "two unchanged rows go in one transaction"
    store.finish_requests(CLUSTER_A.key, rows[:2])  # a re-run finds them gone: no error
    assert [r.pool for r in store.list_requests(CLUSTER_A.key)] == ["c"]
    store.add_request(WorkRequest(CLUSTER_A.id, "c", T0, WorkKind.VERIFY, "asked again", "warden"))
    store.finish_requests(CLUSTER_A.key, rows)
    assert [r.pool for r in store.list_requests(CLUSTER_A.key)] == ["c"], "c was renewed since its lease: it stays"


def test_finished_requests_go_with_the_requests_their_work_asks_for_each_row_once(azurite, store):
    from shared.core.protocol import WorkKind
    from shared.core.records import WorkRequest

    store.add_request(WorkRequest(CLUSTER_A.id, "", T0, WorkKind.RECONCILE, "a cluster write", "event"))
    leased, _ = store.lease_requests(CLUSTER_A.key, "lease-1")
    verify = WorkRequest(CLUSTER_A.id, "np1", T0, WorkKind.VERIFY, "after a remediation", "warden")
    sent = []
    with WardenStore(azurite, table_prefix=store.table_prefix, raw_request_hook=sent.append) as counted:
        # The same request twice (carried over, and asked again): a transaction takes a row once.
        assert counted.finish_requests(CLUSTER_A.key, [(r.stored_key, r.etag) for r in leased], [verify, verify]) == 1
        counted.add_own_requests([verify, verify])
    assert len(sent) == 2, "the removal and the request in one transaction; the pair alone in one write"
    assert [(r.kind, r.pool) for r in store.list_requests(CLUSTER_A.key)] == [(WorkKind.VERIFY, "np1")]


def test_a_merge_writes_only_its_columns_of_an_existing_pool_row(store):
    from shared.core.errors import StoreNotFoundError

    store.put_pool_state(PoolState(CLUSTER_A.id, "np1", "Disabled", "LocalUser", PoolStatus.DRIFTED, reason="planned"))
    update = PoolState(CLUSTER_A.id, "np1", "", "Disabled", PoolStatus.PENDING_REIMAGE, reason="not written")
    store.merge_pool_state(update, ["configured_mode", "status"])
    row = store.get_pool_state(CLUSTER_A.key, "np1")
    assert (row.desired_mode, row.configured_mode, row.status, row.reason) == (
        "Disabled",
        "Disabled",
        PoolStatus.PENDING_REIMAGE,
        "planned",
    ), "the merged columns changed, the others stayed"
    with pytest.raises(StoreNotFoundError):
        store.merge_pool_state(replace(update, pool="gone"), ["status"])


def test_a_plan_merged_under_a_stale_etag_reads_the_row_and_keeps_what_changed_since(store):
    from shared.core.models import SshAccess
    from shared.orchestration.recording import PlannedPool, merge_state, row_seen
    from shared.orchestration.runtime import Runtime

    rt = Runtime(settings=None, arm=None, store=store)  # the store alone is written
    store.put_pool_state(pool_state(reason="seen by the listing"))
    listed = store.get_pool_state(CLUSTER_A.key, "np1")
    seen = row_seen(CLUSTER_A, "np1", {"pending": listed.pending_reimage, "etag": listed.etag})
    store.put_pool_state(replace(listed, pending_reimage=True, etag=None), etag=listed.etag)  # written since
    planned = PlannedPool(SshAccess.LOCAL_USER.value, SshAccess.DISABLED.value, "drifted", "the plan's reason")
    merge_state(rt, CLUSTER_A, "np1", seen, etag=seen.etag, planned=planned)
    row = store.get_pool_state(CLUSTER_A.key, "np1")
    assert (row.reason, row.pending_reimage) == ("the plan's reason", True), "the plan's columns over the row as it is"

    merge_state(
        rt, CLUSTER_A, "gone", row_seen(CLUSTER_A, "gone", {"pending": False, "etag": listed.etag}), planned=planned
    )
    assert store.get_pool_state(CLUSTER_A.key, "gone").reason == "the plan's reason", "a row gone is written whole"


def test_every_change_a_pool_row_takes_names_the_columns_a_merge_writes():
    import inspect

    from shared.orchestration import recording

    changes = [p.name for p in inspect.signature(recording._changed).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert sorted(changes) == sorted(recording._COLUMNS), "a merge would miss (or invent) columns"
    stored = {c for columns in recording._COLUMNS.values() for c in columns}
    assert stored <= set(PoolState.__dataclass_fields__), stored - set(PoolState.__dataclass_fields__)
