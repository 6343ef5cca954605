"""Table rows and keys: escaping, ordering, entity conversion, secret masking (pure)."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.models import ClusterRef, Pool
from shared.core.records import (
    AuditRecord,
    KeyRotation,
    NodeCheck,
    Outcome,
    PoolState,
    PoolStatus,
    column_name,
    from_entity,
    safe_excerpt,
    to_entity,
)
from shared.core.table_keys import (
    chronological_row_key,
    clip,
    cluster_partition,
    from_table_key,
    node_key,
    prefix_range,
    table_key,
    utc,
)

CLUSTER = ClusterRef("00000000-0000-0000-0000-000000000001", "rg-Dev", "aks-1")
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
FINGERPRINT = "SHA256:" + "A" * 43
# Every code point, lone surrogates included: keys must survive whatever an id holds.
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()))


def forbidden(char: str) -> bool:
    return char in "/\\#?" or unicodedata.category(char) == "Cc"


# --- keys -------------------------------------------------------------------------------


@given(ANY_TEXT)
def test_table_key_never_emits_a_forbidden_character(text):
    assert not any(forbidden(c) for c in table_key(text))


@given(ANY_TEXT)
def test_table_key_round_trips(text):
    assert from_table_key(table_key(text)) == text


@given(ANY_TEXT, ANY_TEXT)
def test_table_key_is_injective(first, second):
    if first != second:
        assert table_key(first) != table_key(second)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("plain-name_1.2", "plain-name_1.2"),
        ("/subscriptions/a", "%2Fsubscriptions%2Fa"),
        ("a\\b#c?d", "a%5Cb%23c%3Fd"),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("tab\there\x7f", "tab%09here%7F"),
        ("a|b", "a%7Cb"),
        ("\ud800", "%uD800"),
        ("it's ünïcode", "it's ünïcode"),
    ],
    ids=[
        "plain",
        "slashes",
        "backslash-hash-question",
        "percent",
        "escape-lookalike",
        "controls",
        "separator",
        "surrogate",
        "quote-and-unicode",
    ],
)
def test_table_key_examples(text, key):
    assert table_key(text) == key


def test_cluster_partition_is_the_escaped_cluster_key():
    assert cluster_partition(CLUSTER.key) == table_key(CLUSTER.key)
    assert cluster_partition(CLUSTER.id) == cluster_partition(CLUSTER.key), "ARM ids are case-insensitive"
    assert from_table_key(cluster_partition(CLUSTER.id)) == CLUSTER.key


@given(
    st.datetimes(timezones=st.just(UTC)),
    st.integers(0, 10**12 - 1),
    st.datetimes(timezones=st.just(UTC)),
    st.integers(0, 10**12 - 1),
)
def test_chronological_row_keys_sort_by_time_then_sequence(time1, seq1, time2, seq2):
    key1 = chronological_row_key(time1, seq1, "n1")
    key2 = chronological_row_key(time2, seq2, "n1")
    assert ((time1, seq1) < (time2, seq2)) == (key1 < key2)


def test_chronological_row_key_reads_as_utc_time():
    paris = timezone(timedelta(hours=1))
    key = chronological_row_key(T0.astimezone(paris), 7, "ab12", prefix="check-")
    assert key == "check-20260301T120000.123456Z-000000000007-ab12"


def test_node_key_keeps_parts_apart():
    assert node_key("a|b", "c", "0") != node_key("a", "b|c", "0")
    assert node_key("NP1", "aks-np1-123-vmss", "0") == "np1|aks-np1-123-vmss|0"


@pytest.mark.parametrize(
    ("key", "inside"),
    [("latest-a", True), ("latest-", True), ("latest.", False), ("latesT-a", False), ("check-x", False)],
    ids=["child", "bare", "upper-bound", "other-case", "other-prefix"],
)
def test_prefix_range_selects_the_prefix(key, inside):
    low, high = prefix_range("latest-")
    assert (low <= key < high) == inside


# --- values -----------------------------------------------------------------------------


def test_utc_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="2026-03-01T12:00:00.*no timezone"):
        utc(datetime(2026, 3, 1, 12))


def test_utc_converts_and_returns_a_plain_datetime():
    tokyo = timezone(timedelta(hours=9))
    converted = utc(datetime(2026, 3, 1, 21, 0, tzinfo=tokyo))
    assert converted == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert converted.tzinfo is UTC and type(converted) is datetime


@given(st.text(), st.integers(2, 50))
def test_clip_is_bounded_and_idempotent(text, limit):
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    assert clip(clipped, limit) == clipped


@pytest.mark.parametrize(
    ("output", "secret"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\nactive", "b3BlbnNz"),
        ("b3BlbnNzaC1rZXk\n-----END RSA PRIVATE KEY-----\nactive", "b3BlbnNz"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN", "MIIEvQ"),
        ("curl -H 'Authorization: Bearer abc.def-ghi'", "abc.def"),
        ("token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl seen", "eyJhbGciOi"),
        ("AccountKey=Zm9vYmFy;EndpointSuffix=x", "Zm9vYmFy"),
        ("url?sv=2024&sig=c2VjcmV0&se=1", "c2VjcmV0"),
        ("password: hunter2", "hunter2"),
        ("key " + "Q" * 80 + " end", "Q" * 64),
    ],
    ids=["pem-block", "pem-tail", "pem-head", "bearer", "jwt", "account-key", "sas-sig", "password", "base64-run"],
)
def test_safe_excerpt_masks_secrets(output, secret):
    assert secret not in safe_excerpt(output)


def test_safe_excerpt_keeps_sshd_status_and_the_tail():
    status = "inactive\ndisabled\n"
    assert safe_excerpt(status) == status
    long_output = "lorem ipsum " * 500 + "\nActive: active (running)"
    excerpt = safe_excerpt(long_output, limit=100)
    assert len(excerpt) <= 100 and excerpt.startswith("…lorem") and excerpt.endswith("\nActive: active (running)")


SECRETISH = st.lists(st.sampled_from(list("ab=:. \n-ABCDEFGHIKMNOPRSTVY") + ["password", "Bearer ", "eyJ"]))


@given(SECRETISH.map("".join), st.integers(2, 200))
def test_safe_excerpt_is_idempotent(text, limit):
    once = safe_excerpt(text, limit)
    assert safe_excerpt(once, limit) == once
    assert len(once) <= limit


# --- records and entities ---------------------------------------------------------------


def full_pool_state() -> PoolState:
    return PoolState(
        cluster_id=CLUSTER.id,
        pool="np1",
        desired_mode="Disabled",
        configured_mode="LocalUser",
        status="pending-reimage",
        reason="mode changed, reimage pending",
        pending_reimage=True,
        last_upgrade_time=T0,
        last_upgrade_operation_id="op-1",
        last_verified_time=T0 + timedelta(hours=1),
        nodes_checked=3,
        nodes_drifted=2**40,
        verification_summary="2 of 3 nodes sshd active",
        updated_time=T0,
        etag='W/"etag"',
    )


def test_pool_state_entity_columns_and_round_trip():
    state = full_pool_state()
    entity = to_entity(state, state.partition_key, state.row_key)
    assert entity["PartitionKey"] == cluster_partition(CLUSTER.key) and entity["RowKey"] == "np1"
    assert entity["Status"] == "pending-reimage" and type(entity["Status"]) is str
    assert entity["LastUpgradeTime"] == T0 and entity["NodesDrifted"] == 2**40
    assert "Etag" not in entity, "the ETag is row metadata, not a property"
    restored = from_entity(PoolState, entity, etag='W/"new"')
    assert restored == state and restored.etag == 'W/"new"'


def test_none_values_are_left_out_and_come_back_as_defaults():
    state = PoolState(CLUSTER.id, "np1", "Disabled", "Disabled", PoolStatus.COMPLIANT)
    entity = to_entity(state, state.partition_key, state.row_key)
    assert "LastUpgradeTime" not in entity and "UpdatedTime" not in entity
    assert from_entity(PoolState, entity) == state


def test_audit_record_round_trip_and_normalisation():
    local = timezone(timedelta(hours=-7))
    record = AuditRecord(
        time=T0.astimezone(local),
        cluster_id=CLUSTER.id,
        step="upgrade-node-image",
        outcome="failed",
        pool="np1",
        mode_before="LocalUser",
        mode_after="Disabled",
        operation_id="op-9",
        correlation_id="corr-9",
        code="OperationNotAllowed",
        message="x" * 20000,
        instance_id="warden-abc",
        actor="eventgrid",
        attempt=3,
    )
    assert record.time == T0 and record.time.tzinfo is UTC
    assert record.outcome is Outcome.FAILED and len(record.message) == 8000
    entity = to_entity(record, record.partition_key, "rk")
    assert {
        "Time",
        "ClusterId",
        "Step",
        "Outcome",
        "Pool",
        "ModeBefore",
        "ModeAfter",
        "OperationId",
        "CorrelationId",
        "Code",
        "Message",
        "InstanceId",
        "Actor",
        "Attempt",
    } <= set(entity)
    assert from_entity(AuditRecord, entity) == record


def test_node_check_round_trip_masks_its_excerpt():
    check = NodeCheck(
        cluster_id=CLUSTER.id,
        pool="np1",
        vmss="aks-np1-1-vmss",
        instance_id="0",
        time=T0,
        expected_mode="Disabled",
        sshd_active=False,
        sshd_enabled=None,
        drift=False,
        output_excerpt="inactive\ndisabled\npassword=hunter2",
    )
    assert "hunter2" not in check.output_excerpt
    entity = to_entity(check, check.partition_key, "check-x")
    assert entity["SshdActive"] is False and "SshdEnabled" not in entity
    assert from_entity(NodeCheck, entity) == check


def test_key_rotation_round_trip():
    rotation = KeyRotation(
        cluster_id=CLUSTER.id,
        time=T0,
        fingerprint=FINGERPRINT,
        outcome="succeeded",
        secret_id="https://kv.vault.azure.net/secrets/aks-1-ssh/0123abcd",
        secret_version="0123abcd",
        key_bits=4096,
    )
    assert from_entity(KeyRotation, to_entity(rotation, rotation.partition_key, "rk")) == rotation


@pytest.mark.parametrize(
    "value",
    ["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host", "-----BEGIN RSA PRIVATE KEY-----\nMIIE", "SHA256:short"],
    ids=["public-key", "private-key", "truncated-fingerprint"],
)
def test_key_rotation_refuses_anything_but_a_fingerprint_without_echoing_it(value):
    with pytest.raises(ValueError, match="SHA256") as caught:
        KeyRotation(cluster_id=CLUSTER.id, time=T0, fingerprint=value, outcome="succeeded")
    assert value not in str(caught.value)


def test_unknown_enum_value_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match="status 'broken' is not one of: compliant, drifted"):
        replace(full_pool_state(), status="broken")


def test_from_entity_names_the_row_it_cannot_read():
    with pytest.raises(ValueError, match="PartitionKey='p' RowKey='r' is not a valid AuditRecord"):
        from_entity(AuditRecord, {"PartitionKey": "p", "RowKey": "r", "Step": "plan"})


def test_column_names_are_pascal_case():
    assert column_name("last_upgrade_operation_id") == "LastUpgradeOperationId"


def test_pool_state_pool_key_matches_the_model():
    assert full_pool_state().pool_key == Pool(CLUSTER, "np1").key


def test_the_escaped_characters_are_the_rule_on_every_code_point():
    import unicodedata

    from shared.core.table_keys import _NEEDS_ESCAPE

    def needs_escape(char):  # Cc: C0/C1 control characters; Cs: lone surrogates
        return char in "/\\#?%|" or unicodedata.category(char) in ("Cc", "Cs")

    disagree = [hex(i) for i in range(0x110000) if bool(_NEEDS_ESCAPE.search(chr(i))) != needs_escape(chr(i))]
    assert disagree == []
    assert table_key("a/b\x7f\u0085") == "a%2Fb%7F%85" and table_key("plain-key") == "plain-key"
