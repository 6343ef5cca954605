"""The doctor's judgements, on plain data."""

from __future__ import annotations

import pytest

from shared.core.models import Cluster, ClusterRef, SshAccess
from shared.preflight import doctor
from shared.preflight.doctor import Level

SUB = "00000000-0000-0000-0000-000000000001"
TOPIC = {
    "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.EventGrid/systemTopics/arm",
    "name": "arm",
    "properties": {"source": f"/subscriptions/{SUB}", "topicType": "Microsoft.Resources.Subscriptions"},
}
SITE = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/func-a"


def delivery(resource_id: str, endpoint: str = "AzureFunction", types=None, state="Succeeded") -> dict:
    return {
        "id": TOPIC["id"] + "/eventSubscriptions/w",
        "properties": {
            "provisioningState": state,
            "destination": {"endpointType": endpoint, "properties": {"resourceId": resource_id}},
            "filter": {"includedEventTypes": types} if types is not None else {},
        },
    }


@pytest.mark.parametrize(
    ("subscription", "site", "level"),
    [
        (delivery(f"{SITE}/functions/on_arm_event"), "func-a", Level.OK),
        (delivery(f"{SITE}/functions/on_arm_event"), "", Level.OK),
        (delivery(f"{SITE}/functions/on_arm_event"), "func-b", Level.FAIL),
        (delivery(f"{SITE}/functions/other"), "func-a", Level.FAIL),
        (delivery(f"{SITE}/functions/on_arm_event", "WebHook"), "func-a", Level.FAIL),
        (
            delivery(f"{SITE}/functions/on_arm_event", types=["Microsoft.Resources.ResourceDeleteSuccess"]),
            "",
            Level.FAIL,
        ),
        (delivery(f"{SITE}/functions/on_arm_event", state="Failed"), "", Level.FAIL),
    ],
    ids=["this-app", "site-unknown", "another-app", "another-function", "webhook", "no-writes", "not-provisioned"],
)
def test_event_delivery_must_reach_this_apps_event_function(subscription, site, level):
    check = doctor.event_delivery(SUB, [TOPIC], {TOPIC["id"].lower(): [subscription]}, "on_arm_event", site)
    assert check.level is level
    assert (check.fix == "") is (level is Level.OK)


def test_no_system_topic_for_arm_events_fails():
    other = {**TOPIC, "properties": {**TOPIC["properties"], "topicType": "Microsoft.Storage.StorageAccounts"}}
    check = doctor.event_delivery(SUB, [other], {}, "on_arm_event", "")
    assert check.level is Level.FAIL and "no Event Grid system topic" in check.detail


@pytest.mark.parametrize(
    ("mode", "state", "level"),
    [
        (SshAccess.ENTRA_ID, "Registered", Level.OK),
        (SshAccess.ENTRA_ID, "NotRegistered", Level.FAIL),
        (SshAccess.ENTRA_ID, "Registering", Level.FAIL),
        (SshAccess.DISABLED, "NotRegistered", Level.FAIL),  # still preview: ARM refuses the pool PUT
    ],
)
def test_a_feature_the_policy_needs(mode, state, level):
    check = doctor.feature(SUB, mode, state, ["c/p1", "c/p2", "c/p3", "c/p4"])
    assert check.level is level and "4 pool(s)" in check.detail and "…" in check.detail


def test_a_locked_node_resource_group_warns_and_an_open_one_is_ok():
    ref = ClusterRef(SUB, "rg", "c")
    locked = Cluster(ref, node_resource_group="MC_rg_c", node_resource_group_restriction="ReadOnly")
    assert doctor.node_resource_group(SUB, locked).level is Level.WARN
    assert doctor.node_resource_group(SUB, Cluster(ref, node_resource_group="MC_rg_c")).level is Level.OK


def test_the_report_fails_only_on_a_failure():
    ok = doctor.Check(SUB, "x", "t", Level.OK, "fine")
    warn = doctor.Check(SUB, "x", "t", Level.WARN, "hm", "fix")
    assert not doctor.DoctorReport((ok, warn)).failed
    report = doctor.DoctorReport((ok, warn, doctor.Check(SUB, "x", "t", Level.FAIL, "no", "fix")))
    assert report.failed and report.summary == {"ok": 1, "warn": 1, "fail": 1}


# --- on the spec's own examples (tests/fixtures/SOURCES.md) ---------------------------------------


def spec_body(name: str, status: str = "200"):
    import json
    from pathlib import Path

    document = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / name).read_text(encoding="utf-8"))
    return document["responses"][status]["body"]


def test_a_feature_answered_in_lowercase_is_registered():
    state = spec_body("features_2025-03-01_getFeature.json")["properties"]["state"]
    assert state == "registered" and doctor.feature(SUB, SshAccess.ENTRA_ID, state, ["c/p"]).level is Level.OK


def test_a_provider_still_registering_is_not_ready():
    state = spec_body("resources_2025-04-01_GetProvider.json")["registrationState"]
    assert doctor.provider(SUB, "Microsoft.TestRP1", state).level is Level.FAIL


def test_a_subscription_with_only_a_storage_system_topic_has_no_arm_delivery():
    topics = spec_body("eventgrid_2025-02-15_SystemTopics_ListBySubscription.json")["value"]
    subscription = topics[0]["id"].split("/")[2]
    check = doctor.event_delivery(subscription, topics, {}, "on_arm_event", "")
    assert check.level is Level.FAIL and "no Event Grid system topic" in check.detail


def test_the_spec_s_event_subscriptions_do_not_count_as_delivery_to_the_warden():
    queue = spec_body("eventgrid_2025-02-15_SystemTopicEventSubscriptions_Get.json")
    function = spec_body("eventgrid_2025-02-15_EventSubscriptions_GetForCustomTopic_AzureFunctionDestination.json")
    check = doctor.event_delivery(SUB, [TOPIC], {TOPIC["id"].lower(): [queue, function]}, "ContosoFunc", "")
    assert check.level is Level.FAIL  # a queue, and a function under "funtions/" (the example's own typo)


def test_the_spec_s_empty_permissions_allow_nothing():
    from shared.preflight.permissions import NODE_ACTIONS, missing

    for name in (
        "authorization_2018-01-01-preview_GetPermissions.json",
        "authorization_2015-07-01_GetPermissions.json",
    ):
        assert missing(NODE_ACTIONS, spec_body(name)["value"]) == list(NODE_ACTIONS)
