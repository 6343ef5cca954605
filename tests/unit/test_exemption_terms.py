"""Break-glass exemptions, the pure parts: the plan while exempt, the re-check before a write,
WARDEN_MAX_EXEMPTION, the exemption row, and the request checks (settings only, no I/O)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import ConfigError, Settings
from shared.config.durations import parse_duration
from shared.core.models import Cluster, ClusterRef, Pool, SshAccess
from shared.core.records import PoolExemption, exemptions_in_force, from_entity, to_entity
from shared.orchestration.names import exemption_instance_id
from shared.policy import parse_policy
from shared.policy.plan import Exemption, Status, Step, apply_plan, plan_pool, write_still_applies
from shared.triggers.exemptions import exemption_request, removal_request
from shared.triggers.http_validation import MAX_REASON_CHARS, BadRequest

SUB = "11111111-1111-1111-1111-111111111111"
REF = ClusterRef(SUB, "rg", "aks")
RUNNING = Cluster(REF, kubernetes_version="1.33.2")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UNTIL = NOW + timedelta(hours=4)
DISABLED = parse_policy({"default": "Disabled"})
POOL_ID = REF.id + "/agentPools/np"


def linux(mode=SshAccess.LOCAL_USER, **changes):
    return replace(Pool(REF, "np", ssh_access=mode, orchestrator_version="1.33.2"), **changes)


def exemption(mode=None):
    return Exemption("alice@contoso.com (5f0c)", "incident 4711", UNTIL, mode)


# --- the plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "mode", "pending", "desired", "steps", "reason"),
    [
        (linux(), None, False, SshAccess.LOCAL_USER, (), "keeps LocalUser"),
        (linux(SshAccess.DISABLED), None, True, SshAccess.DISABLED, (), "keeps Disabled"),
        (
            linux(SshAccess.DISABLED),
            SshAccess.LOCAL_USER,
            False,
            SshAccess.LOCAL_USER,
            (Step.UPDATE_SSH_ACCESS, Step.UPGRADE_NODE_IMAGE),
            "Disabled -> LocalUser",
        ),
        (linux(), SshAccess.LOCAL_USER, False, SshAccess.LOCAL_USER, (), ": LocalUser"),
        (linux(), SshAccess.LOCAL_USER, True, SshAccess.LOCAL_USER, (Step.UPGRADE_NODE_IMAGE,), "nodes wait"),
        (linux(os_type="Windows"), SshAccess.ENTRA_ID, False, SshAccess.ENTRA_ID, (), "cannot be set"),
    ],
    ids=[
        "keeps",
        "keeps-even-if-a-reimage-is-owed",
        "gives-a-mode",
        "has-its-mode",
        "mode-set-reimage-owed",
        "unsupported",
    ],
)
def test_an_exempt_pool_is_planned_by_its_exemption_never_the_policy(pool, mode, pending, desired, steps, reason):
    plan = plan_pool(RUNNING, pool, DISABLED, pending_reimage=pending, exemption=exemption(mode))
    assert (plan.status, plan.desired, plan.steps) == (Status.EXEMPTED, desired, steps)
    assert plan.exemption == exemption(mode)
    assert plan.reason.startswith("exempted by alice@contoso.com (5f0c) until 2026-12-01T16:00:00Z (incident 4711)")
    assert reason in plan.reason


def test_an_exempt_pool_of_a_stopped_cluster_gets_no_write():
    plan = plan_pool(
        replace(RUNNING, power_state="Stopped"), linux(), DISABLED, exemption=exemption(SshAccess.DISABLED)
    )
    assert (plan.status, plan.steps) == (Status.EXEMPTED, ())
    assert "cluster is stopped" in plan.reason


modes = st.sampled_from([None, *SshAccess])


@given(st.sampled_from(list(SshAccess)), modes, st.booleans(), st.sampled_from(["1.33.2", "1.37.0"]))
def test_applying_an_exempt_plan_leaves_nothing_to_do(current, mode, pending, version):
    terms = exemption(mode)
    plan = plan_pool(
        RUNNING, linux(current, orchestrator_version=version), DISABLED, pending_reimage=pending, exemption=terms
    )
    again = plan_pool(RUNNING, apply_plan(plan), DISABLED, exemption=terms)
    assert (again.status, again.steps) == (Status.EXEMPTED, ())


@pytest.mark.parametrize(
    ("terms", "desired", "expected"),
    [
        (None, SshAccess.DISABLED, None),
        (exemption(), SshAccess.DISABLED, "keeps its mode, not Disabled: not writing"),
        (exemption(SshAccess.LOCAL_USER), SshAccess.DISABLED, "gives it LocalUser, not Disabled: not writing"),
        (exemption(SshAccess.LOCAL_USER), SshAccess.LOCAL_USER, None),
        (None, SshAccess.LOCAL_USER, "the policy now says Disabled"),  # the exemption ended before the write
    ],
    ids=["policy", "exempt-keeps", "exempt-other-mode", "exempt-its-mode", "ended"],
)
def test_a_write_is_re_checked_against_the_exemption_in_force(terms, desired, expected):
    why = write_still_applies(RUNNING, linux(), DISABLED, desired, terms)
    assert why == expected if expected is None else expected in why


# --- WARDEN_MAX_EXEMPTION ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(hours=36)),
        ("PT24H", timedelta(hours=24)),
        ("P1DT12H", timedelta(hours=36)),
        ("pt90m", timedelta(minutes=90)),
        ("3600s", timedelta(hours=1)),
    ],
)
def test_durations_read_in_short_and_iso_8601_forms(text, duration):
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["", "24", "P", "PT", "T1H", "P1H", "1h30", "h", "1.5h", "٣h", "-1h", "24 h"])
def test_what_is_no_duration_is_refused_naming_the_forms(text):
    with pytest.raises(ValueError, match="is not a duration such as 90m, 24h"):
        parse_duration(text)


def settings(**env: str) -> Settings:
    return Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, **env})


def test_max_exemption_defaults_to_a_day_and_is_read():
    assert settings().max_exemption == timedelta(hours=24)
    assert settings(WARDEN_MAX_EXEMPTION="PT90M").max_exemption == timedelta(minutes=90)
    assert settings(WARDEN_MAX_EXEMPTION="7d").max_exemption == timedelta(days=7)


@pytest.mark.parametrize("value", ["8d", "30s", "0m", "forever", "24"])
def test_max_exemption_outside_a_minute_to_a_week_is_refused(value):
    with pytest.raises(ConfigError, match=f"WARDEN_MAX_EXEMPTION is '{value}'.*from 1m to 168h"):
        settings(WARDEN_MAX_EXEMPTION=value)


# --- the row ------------------------------------------------------------------------------------


def row(**changes) -> PoolExemption:
    values = {
        "cluster_id": REF.id,
        "pool": "np",
        "until": UNTIL,
        "reason": "incident 4711",
        "actor": "cli (alice)",
        "granted_time": NOW,
        "mode": "localuser",
    }
    return PoolExemption(**{**values, **changes})


def test_the_row_round_trips_and_normalises_its_mode():
    exempt = row()
    assert exempt.mode == "LocalUser" and exempt.pool_key == POOL_ID.lower()
    entity = to_entity(exempt, exempt.partition_key, exempt.row_key)
    assert from_entity(PoolExemption, entity) == exempt
    assert exempt.terms == Exemption("cli (alice)", "incident 4711", UNTIL, SshAccess.LOCAL_USER)


def test_an_expired_row_is_never_in_force():
    rows = [row(), row(pool="old", until=NOW - timedelta(seconds=1)), row(pool="edge", until=NOW)]
    assert list(exemptions_in_force(rows, NOW)) == [POOL_ID.lower()]
    assert exemptions_in_force(rows, UNTIL) == {}


def test_a_row_with_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown sshAccess 'Open'"):
        row(mode="Open")


def test_timer_instance_ids_are_safe_and_one_per_pool_and_end():
    first = exemption_instance_id(POOL_ID.lower(), UNTIL)
    assert first.startswith("exemption-np-") and first.endswith("-20261201160000")
    assert set(first) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert exemption_instance_id(POOL_ID.lower(), UNTIL + timedelta(hours=1)) != first
    assert exemption_instance_id(POOL_ID.upper(), UNTIL) == first


# --- the request checks, before any I/O ------------------------------------------------------------

GOOD = {"pool": POOL_ID, "until": "2026-12-01T16:00:00Z", "reason": "incident 4711"}
BAD = {
    "no-pool": ({**GOOD, "pool": None}, 400, "InvalidPool", "'pool' is required"),
    "a-cluster": ({**GOOD, "pool": REF.id}, 400, "InvalidPool", "names a cluster"),
    "not-aks": ({**GOOD, "pool": f"/subscriptions/{SUB}/resourceGroups/rg"}, 400, "InvalidPool", "not an AKS"),
    "out-of-scope": (
        {**GOOD, "pool": POOL_ID.replace(SUB, "22222222-2222-2222-2222-222222222222")},
        403,
        "OutOfScope",
        "not in WARDEN_SUBSCRIPTIONS",
    ),
    "no-until": ({k: v for k, v in GOOD.items() if k != "until"}, 400, "InvalidUntil", "'until' is required"),
    "until-a-number": ({**GOOD, "until": 1764604800}, 400, "InvalidUntil", "not int"),
    "until-no-time": ({**GOOD, "until": "tomorrow"}, 400, "InvalidUntil", "which is not an ISO-8601 time"),
    "until-no-offset": ({**GOOD, "until": "2026-12-01T16:00:00"}, 400, "InvalidUntil", "has no offset"),
    "until-past": ({**GOOD, "until": "2026-12-01T11:59:59Z"}, 400, "InvalidUntil", "is not in the future"),
    "until-now": ({**GOOD, "until": "2026-12-01T12:00:00Z"}, 400, "InvalidUntil", "is not in the future"),
    "until-too-far": (
        {**GOOD, "until": "2026-12-02T12:00:01Z"},
        400,
        "InvalidUntil",
        "more than WARDEN_MAX_EXEMPTION (24h) away: end it by 2026-12-02T12:00:00.000Z",
    ),
    "no-reason": ({**GOOD, "reason": ""}, 400, "InvalidReason", "'reason' is required"),
    "blank-reason": ({**GOOD, "reason": "   "}, 400, "InvalidReason", "'reason' is required"),
    "long-reason": ({**GOOD, "reason": "x" * (MAX_REASON_CHARS + 1)}, 400, "InvalidReason", "at most 500"),
    "control-reason": ({**GOOD, "reason": "two\nlines"}, 400, "InvalidReason", "control character"),
    "bad-mode": ({**GOOD, "mode": "Open"}, 400, "InvalidMode", "expected one of Disabled, EntraId, LocalUser"),
    "empty-mode": ({**GOOD, "mode": ""}, 400, "InvalidMode", "expected one of"),
    "unknown-field": ({**GOOD, "cluster": REF.id}, 400, "InvalidBody", "unknown field 'cluster'"),
}


@pytest.mark.parametrize(("body", "status", "code", "needle"), BAD.values(), ids=BAD.keys())
def test_a_bad_exemption_request_is_refused_naming_the_problem(body, status, code, needle):
    with pytest.raises(BadRequest) as refused:
        exemption_request(body, settings(), NOW)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert needle in refused.value.message


def test_a_good_request_ends_in_utc_and_parses_the_mode_case_insensitively():
    asked = exemption_request({**GOOD, "until": "2026-12-01T17:00:00+01:00", "mode": "entraid"}, settings(), NOW)
    assert (asked.target.pool, asked.until, asked.mode) == ("np", UNTIL, SshAccess.ENTRA_ID)
    made = asked.row("alice", NOW)
    assert (made.until, made.mode, made.actor, made.granted_time) == (UNTIL, "EntraId", "alice", NOW)


def test_the_longest_exemption_is_the_setting():
    longest = exemption_request({**GOOD, "until": "2026-12-08T12:00:00Z"}, settings(WARDEN_MAX_EXEMPTION="7d"), NOW)
    assert longest.until == NOW + timedelta(days=7)


def test_a_removal_needs_a_pool_and_a_reason():
    assert removal_request({"pool": POOL_ID, "reason": "fixed", "code": "function-key"}, settings())[1] == "fixed"
    for query, needle in (({"reason": "x"}, "'pool' is required"), ({"pool": POOL_ID}, "'reason' is required")):
        with pytest.raises(BadRequest, match=needle):
            removal_request(query, settings())
    with pytest.raises(BadRequest, match="unknown parameter 'until'"):
        removal_request({"pool": POOL_ID, "reason": "x", "until": "1h"}, settings())
