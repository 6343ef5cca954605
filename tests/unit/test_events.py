"""Event Grid deliveries to reconcile targets, from the published ARM event samples.

The samples carry placeholders (`{subscription-id}`, a storage account); the tests substitute an
AKS pool or cluster into the JSON text to make relevant events out of them.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.eventgrid import EventGridEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.events import (
    ACTION_SUCCESS,
    CLOUD_EVENT_SCHEMA,
    EVENT_GRID_SCHEMA,
    MAX_DEPTH,
    WRITE_SUCCESS,
    Drop,
    EventError,
    Hint,
    RawEvent,
    classify,
    decode_delivery,
    parse_delivery,
    parse_event,
)
from shared.core.models import Target

FIXTURES = Path(__file__).parent.parent / "fixtures"
SUB = "11111111-1111-1111-1111-111111111111"
OTHER_SUB = "22222222-2222-2222-2222-222222222222"
WARDEN_PRINCIPAL = "33333333-3333-3333-3333-333333333333"
SUBS = frozenset({SUB})
OWN = frozenset({WARDEN_PRINCIPAL})
CLUSTER_PATH = "providers/Microsoft.ContainerService/managedClusters/aks1"
POOL_PATH = f"{CLUSTER_PATH}/agentPools/np1"
STORAGE_PATH = "providers/Microsoft.Storage/storageAccounts/{storage-name}"
STORAGE_WRITE = "Microsoft.Storage/storageAccounts/write"
POOL_WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"
CLUSTER_ID = f"/subscriptions/{SUB}/resourceGroups/rg-aks/{CLUSTER_PATH}"


EG_WRITE = "eventgrid_egschema_resource_write_success.json"
CE_WRITE = "eventgrid_cloudevents_resource_write_success.json"
CE_ACTION = "eventgrid_cloudevents_resource_action_success.json"
LIST_KEYS = "Microsoft.EventHub/namespaces/AuthorizationRules/listKeys/action"
EVENT_HUB_RULE = "providers/Microsoft.EventHub/namespaces/{namespace}/AuthorizationRules/RootManageSharedAccessKey"
POOL_UPGRADE = "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def fixture_text(name: str, *replacements: tuple[str, str], subscription: str = SUB) -> str:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for old, new in (("{subscription-id}", subscription), ("{resource-group}", "rg-aks"), *replacements):
        text = text.replace(old, new)
    return text


def pool_write(name: str, *replacements: tuple[str, str], **kwargs) -> str:
    """A sample turned into a write on pool np1 of cluster aks1 (as a storage write, or its failure/delete)."""
    return fixture_text(name, (STORAGE_PATH, POOL_PATH), (STORAGE_WRITE, POOL_WRITE), *replacements, **kwargs)


def pool_upgrade(*replacements: tuple[str, str]) -> str:
    """The listKeys action sample turned into a node-image upgrade of pool np1."""
    return fixture_text(CE_ACTION, (EVENT_HUB_RULE, POOL_PATH), (LIST_KEYS, POOL_UPGRADE), *replacements)


def only(body) -> Hint | Drop:
    (raw,) = parse_delivery(body)
    return classify(raw, SUBS, OWN)


def edited(text: str, edit) -> dict:
    event = json.loads(text)
    edit(event)
    return event


def pool_write_by(claims: dict) -> dict:
    return edited(pool_write(EG_WRITE), lambda e: e["data"]["claims"].update(claims))


# --- the published samples ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "schema"), [(EG_WRITE, EVENT_GRID_SCHEMA), (CE_WRITE, CLOUD_EVENT_SCHEMA)])
def test_pool_write_becomes_a_hint_for_the_pool(name, schema):
    (raw,) = parse_delivery(pool_write(name).encode())
    hint = classify(raw, SUBS, OWN)
    assert raw.schema == schema
    assert isinstance(hint, Hint)
    # The samples spell the segment `resourcegroups`; the target is the same cluster either way.
    assert hint.target == Target.from_id(CLUSTER_ID + "/agentPools/np1")
    assert hint.target.cluster.key == CLUSTER_ID.lower()
    assert (hint.event_id, hint.event_type, hint.operation) == (raw.id, WRITE_SUCCESS, POOL_WRITE)
    assert raw.id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"
    assert (hint.correlation_id, hint.caller) == ("{ID}", "{user-name}")  # the UPN names the caller
    assert hint.event_time == "2018-07-19T18:38:04.611735+00:00"
    assert hint.own_write is False
    record = hint.to_json()
    assert (record["outcome"], record["cluster"], record["pool"]) == ("hint", hint.target.cluster.id, "np1")
    assert "{token}" not in json.dumps(record)  # no claim but the caller's identifier is kept


@pytest.mark.parametrize(
    ("event", "pool"),
    [
        (
            fixture_text(
                EG_WRITE, (STORAGE_PATH, CLUSTER_PATH), (STORAGE_WRITE, POOL_WRITE.replace("/agentPools", ""))
            ),
            None,
        ),
        (edited(pool_write(EG_WRITE), lambda e: e["data"].pop("operationName")), "np1"),
        (edited(pool_write(CE_WRITE), lambda e: e.pop("subject")), "np1"),  # data.resourceUri names it
        (pool_upgrade(), "np1"),
    ],
    ids=["cluster-write", "no-operation-name", "cloudevent-without-subject", "node-image-upgrade"],
)
def test_variants_that_name_a_target(event, pool):
    hint = only(event)
    assert isinstance(hint, Hint)
    assert hint.target.cluster.key == CLUSTER_ID.lower()
    assert hint.target.pool == pool


@pytest.mark.parametrize(
    ("event", "caller"),
    [
        (pool_upgrade(("{ID}", WARDEN_PRINCIPAL)), WARDEN_PRINCIPAL),  # the sample's appid and oid are both `{ID}`
        (pool_write_by({OID_CLAIM: WARDEN_PRINCIPAL}), "{user-name}"),
        (pool_write_by({OID_CLAIM: "", "oid": WARDEN_PRINCIPAL.upper()}), "{user-name}"),
        (pool_write_by({"appid": WARDEN_PRINCIPAL}), "{user-name}"),
    ],
    ids=["action-sample", "object-id-claim", "oid-upper-case", "appid"],
)
def test_own_writes_are_flagged(event, caller):
    hint = only(event)
    assert isinstance(hint, Hint)
    assert hint.own_write is True
    assert hint.caller == caller


def test_service_principal_caller_is_named_by_its_appid():
    hint = only(pool_upgrade())
    assert isinstance(hint, Hint)
    assert (hint.event_type, hint.caller, hint.own_write) == (ACTION_SUCCESS, "{ID}", False)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (EG_WRITE, "Microsoft.Storage/storageAccounts/write"),
        (CE_WRITE, "Microsoft.Storage/storageAccounts/write"),
        (CE_ACTION, "listKeys/action"),
        ("eventgrid_egschema_resource_delete_success.json", "deleted"),
        ("eventgrid_cloudevents_resource_write_failure.json", "ResourceWriteFailure"),
        ("eventgrid_subscription_validation_event.json", "subscription validation"),
        ("eventgrid_subscription_validation_response.json", "neither Event Grid schema"),
    ],
    ids=["storage-eg", "storage-ce", "listkeys-action", "delete", "write-failure", "validation", "not-an-event"],
)
def test_irrelevant_samples_are_dropped_with_a_reason(name, reason):
    drop = only(fixture_text(name))
    assert isinstance(drop, Drop)
    assert reason in drop.reason
    assert drop.to_json()["outcome"] == "drop"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("eventgrid_egschema_resource_delete_success.json", "a deleted resource leaves nothing to enforce"),
        ("eventgrid_cloudevents_resource_write_failure.json", "'Microsoft.Resources.ResourceWriteFailure' is neither"),
    ],
    ids=["delete", "write-failure"],
)
def test_delete_and_failure_on_an_aks_pool_are_dropped_by_type(name, reason):
    text = pool_write(name, ("storageAccounts/delete", "agentPools/delete"))
    assert json.loads(text)["data"]["status"] == "Succeeded"  # as published, even for the failure
    drop = only(text)
    assert isinstance(drop, Drop)
    assert reason in drop.reason


def test_pool_in_another_subscription_is_dropped():
    drop = only(pool_write(EG_WRITE, subscription=OTHER_SUB))
    assert isinstance(drop, Drop)
    assert drop.reason == f"subscription {OTHER_SUB} not in WARDEN_SUBSCRIPTIONS"


def test_subscriptions_compare_case_insensitively():
    assert isinstance(classify(json.loads(pool_write(EG_WRITE)), frozenset({SUB.upper()}), OWN), Hint)


def test_aks_child_that_is_no_pool_is_dropped():
    drop = only(fixture_text(EG_WRITE, (STORAGE_PATH, f"{CLUSTER_PATH}/maintenanceConfigurations/default")))
    assert isinstance(drop, Drop)
    assert "cannot change the SSH access" in drop.reason
    drop = only(pool_write(EG_WRITE, ("agentPools/np1", "maintenanceConfigurations/default")))
    assert isinstance(drop, Drop)
    assert "not an AKS managed-cluster or agent-pool resource id" in drop.reason


# --- both CloudEvents spellings ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["specversion", "specVersion"])
def test_cloudevents_are_read_with_either_specversion_spelling(key):
    event = json.loads(pool_write(CE_WRITE))
    event[key] = event.pop("specversion")
    (raw,) = parse_delivery([event])
    assert raw.schema == CLOUD_EVENT_SCHEMA
    assert not raw.problem
    assert isinstance(classify(raw, SUBS, OWN), Hint)


# --- malformed deliveries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "delivery is not JSON"),
        (b"\xff\xfe\x00garbage", "delivery is not JSON"),
        ("42", "delivery is a JSON number"),
        ('"text"', "delivery is a JSON string"),
        ("null", "delivery is a JSON null"),
        (b"[" * 100_000, "delivery is not JSON"),
    ],
    ids=["not-json", "not-utf8", "number", "string", "null", "too-deep"],
)
def test_unreadable_delivery_raises_a_clear_error(body, message):
    with pytest.raises(EventError, match=message) as raised:
        parse_delivery(body)
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("subject"), r"event \[0\]: 'subject' is missing; expected a string"),
        (lambda e: e.update(subject=5), r"event \[0\]: 'subject' is 5; expected a string"),
        (lambda e: e.pop("id"), r"event \[0\]: 'id' is missing; expected a non-empty string"),
        (lambda e: e.pop("eventTime"), r"event \[0\]: 'eventTime' is missing"),
        (lambda e: e.update(eventTime="yesterday"), r"'eventTime' is 'yesterday'; expected an RFC 3339 time"),
        (lambda e: e.pop("data"), r"has no 'data'"),
        (lambda e: e.pop("eventType"), r"neither Event Grid schema \(no 'eventType'\) nor CloudEvents"),
    ],
    ids=["no-subject", "number-subject", "no-id", "no-time", "bad-time", "no-data", "no-event-type"],
)
def test_malformed_event_grid_event_is_reported_by_index_and_field(change, message):
    event = json.loads(pool_write(EG_WRITE))
    change(event)
    with pytest.raises(EventError, match=message):
        parse_event(event)
    (raw,) = parse_delivery(json.dumps(event))
    drop = classify(raw, SUBS, OWN)
    assert isinstance(drop, Drop)
    assert drop.reason == raw.problem


@pytest.mark.parametrize(
    "text",
    [
        "2018-02-30T00:00:00Z",
        "2018-07-19T24:00:00Z",
        "2018-07-19T18:38:60Z",
        "2018-07-19T18:38:04+25:00",
        "2018-07-19 18:38:04Z",
        "2018-07-19T18:38:04.6+0100",
        "2018-07-19T18:38:04,5Z",
        "2018-07-19",
        "2018-07-19T18:38:04Z\n",
        "\u0662\u0660\u0661\u0668-07-19T18:38:04Z",
    ],
    ids=[
        "feb-30",
        "hour-24",
        "second-60",
        "offset-25h",
        "space",
        "basic-offset",
        "comma",
        "date-only",
        "newline",
        "arabic",
    ],
)
def test_an_event_grid_time_that_is_not_rfc_3339_is_unreadable(text):
    event = json.loads(pool_write(EG_WRITE))
    event["eventTime"] = text
    with pytest.raises(EventError, match="'eventTime' is .*; expected an RFC 3339 time"):
        parse_event(event)


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))])


@settings(max_examples=200)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES),
    st.integers(min_value=0, max_value=9),
    st.sampled_from(["Z", "z", "+00:00", "none"]),
)
def test_an_event_grid_time_is_read_as_the_sdk_reads_it(moment, digits, utc_as):
    """The RFC 3339 reader gives the datetime azure.eventgrid's `EventGridEvent.from_dict` gives."""
    fraction = f".{moment.microsecond:06d}000"[: digits + 1] if digits else ""
    offset = moment.isoformat()[-6:]
    if offset == "+00:00":
        offset = "" if utc_as == "none" else utc_as
    event = {
        **json.loads(pool_write(EG_WRITE)),
        "eventTime": f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}{fraction}{offset}",
    }
    sdk = EventGridEvent.from_dict({**event, "data": {}}).event_time
    ours = parse_event(event).time
    assert (ours, ours.utcoffset()) == (sdk, sdk.utcoffset())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(specversion="0.3"), r"event \[3\] has specversion '0.3'; expected '1.0'"),
        (lambda e: e.pop("type"), r"'type' is missing"),
        (lambda e: e.pop("source"), r"'source' is missing"),
        (lambda e: e.update(time="2018-13-45T99:00:00Z"), r"'time' is '2018-13-45T99:00:00Z'; expected an RFC 3339"),
        (lambda e: e.update(time="x"), r"'time' is 'x'"),
        (lambda e: e.update(subject=["a"]), r"'subject' is \['a'\]; expected a string"),
    ],
    ids=["spec-0.3", "no-type", "no-source", "bad-time", "short-time", "list-subject"],
)
def test_malformed_cloudevent_is_reported_by_field(change, message):
    event = json.loads(pool_write(CE_WRITE))
    change(event)
    with pytest.raises(EventError, match=message):
        parse_event(event, 3)


def test_data_that_is_no_object_raises_on_classify():
    event = json.loads(pool_write(EG_WRITE))
    event["data"] = ["not", "an", "object"]
    with pytest.raises(EventError, match=r"'data' is \['not', 'an', 'object'\]; expected an object"):
        classify(event, SUBS, OWN)


def test_bad_events_among_good_ones_are_reported_and_the_others_kept():
    (validation,) = json.loads(fixture_text("eventgrid_subscription_validation_event.json"))
    good = json.loads(pool_write(EG_WRITE))
    bad = {k: v for k, v in good.items() if k != "subject"}
    outcomes = [classify(raw, SUBS, OWN) for raw in parse_delivery(json.dumps([validation, good, bad, 7, good]))]
    assert [type(o).__name__ for o in outcomes] == ["Drop", "Hint", "Drop", "Drop", "Hint"]
    assert "handshake" in outcomes[0].reason
    assert outcomes[2].event_id == good["id"]
    assert outcomes[2].reason.startswith("event [2]: 'subject' is missing")
    assert outcomes[3].reason == "event [3] is a JSON number; expected an object"


# --- properties --------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PLAUSIBLE = {
    "eventType": st.sampled_from([WRITE_SUCCESS, ACTION_SUCCESS, "Microsoft.Resources.ResourceWriteFailure"]),
    "type": st.sampled_from([WRITE_SUCCESS, ACTION_SUCCESS]),
    "specversion": st.sampled_from(["1.0", "0.3"]),
    "specVersion": st.just("1.0"),
    "eventTime": st.sampled_from(["2018-07-19T18:38:04.6117357Z", "2018-07-19T18:38:04+02:00", "", "Z", "2018"]),
    "time": st.sampled_from(["2018-07-19T18:38:04.6117357Z", "2018-07-19T18:38:04-05:30", "+", "garbage"]),
    "subject": st.sampled_from([CLUSTER_ID, CLUSTER_ID + "/agentPools/np1", "", "/subscriptions/x"]),
    "operationName": st.sampled_from([POOL_WRITE, "Microsoft.ContainerService/managedClusters/start/action", ""]),
    "resourceUri": st.sampled_from([CLUSTER_ID, "/x"]),
    "claims": st.dictionaries(st.sampled_from(["oid", "appid", "upn", "name"]), JSON_VALUES),
}
BASES = [
    json.loads(pool_write(EG_WRITE)),
    json.loads(pool_write(CE_WRITE)),
    json.loads(pool_write("eventgrid_cloudevents_resource_write_failure.json")),
    *json.loads(fixture_text("eventgrid_subscription_validation_event.json")),
]


@st.composite
def mutated(draw, keys_of: st.SearchStrategy, base: dict) -> dict:
    """`base` with some keys removed and some set to plausible or arbitrary values."""
    result = dict(base)
    for key in draw(st.lists(st.sampled_from(sorted(result) or [""]), unique=True, max_size=3)):
        result.pop(key, None)
    for key in draw(st.lists(keys_of, max_size=3)):
        result[key] = draw(PLAUSIBLE.get(key, st.nothing()) | JSON_VALUES)
    return result


EVENT_KEYS = st.sampled_from(
    ["id", "subject", "eventType", "eventTime", "data", "dataVersion", "topic", "type", "source", "time"]
    + ["specversion", "specVersion", "datacontenttype", "dataschema"]
) | st.text(max_size=8)
DATA_KEYS = st.sampled_from(["operationName", "resourceUri", "claims", "correlationId"]) | st.text(max_size=8)


@st.composite
def events(draw) -> dict:
    event = draw(mutated(EVENT_KEYS, draw(st.sampled_from(BASES))))
    if isinstance(event.get("data"), dict):
        event["data"] = draw(mutated(DATA_KEYS, event["data"]))
    return event


EVENTS = events() | st.dictionaries(EVENT_KEYS, JSON_VALUES, max_size=10)


@settings(max_examples=400, deadline=None)
@given(EVENTS)
def test_classify_raises_nothing_but_event_error(event):
    try:
        outcome = classify(event, SUBS, OWN)
    except EventError:
        return
    assert isinstance(outcome, (Hint, Drop))
    json.dumps(outcome.to_json())


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENTS, max_size=4) | JSON_VALUES)
def test_parse_delivery_raises_nothing_but_event_error(document):
    try:
        raws = parse_delivery(json.dumps(document))
    except EventError:
        return
    assert all(isinstance(raw, RawEvent) for raw in raws)


# --- input hygiene: names, depth, encoding ------------------------------------------------------


def nested(depth: int) -> dict:
    """`{"a": {"a": ...}}`, `depth` levels, built without recursion."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("pool_path", "says"),
    [
        (f"{CLUSTER_PATH}/agentPools/{'p' * 1000}", "(1000 characters)"),
        (POOL_PATH.replace("aks1", "aks?x"), "'aks?x'"),
        (POOL_PATH.replace("np1", "np%2F1"), "'np%2F1'"),
        (POOL_PATH.replace("aks1", "aks#1"), "'aks#1'"),
        (POOL_PATH.replace("np1", "np 1"), "'np 1'"),
        (POOL_PATH.replace("aks1", "aks1-"), "'aks1-'"),
    ],
    ids=[
        "pool-1000-chars",
        "cluster-question-mark",
        "pool-encoded-slash",
        "cluster-hash",
        "pool-space",
        "trailing-hyphen",
    ],
)
def test_an_event_about_a_name_no_aks_resource_can_have_is_dropped_with_the_rule(pool_path, says):
    event = json.loads(pool_write(EG_WRITE))
    event["subject"] = event["data"]["resourceUri"] = f"/subscriptions/{SUB}/resourceGroups/rg-aks/{pool_path}"
    drop = only(json.dumps(event))
    assert isinstance(drop, Drop)
    assert "naming rule" in drop.reason and says in drop.reason
    assert len(drop.reason) < 300 and "p" * 200 not in drop.reason


@pytest.mark.parametrize(
    "depth", [MAX_DEPTH - 2, MAX_DEPTH - 1, 10_000], ids=["at-the-limit", "one-level-deeper", "10000-deep"]
)
def test_an_event_whose_data_nests_too_deep_is_unreadable(depth):
    event = json.loads(pool_write(EG_WRITE))
    event["data"] = {**event["data"], "deep": nested(depth)}  # under the event and its data: 2 more levels
    if depth + 2 <= MAX_DEPTH:
        assert isinstance(classify(event, SUBS, OWN), Hint)
        return
    with pytest.raises(EventError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_event(event)
    (raw,) = parse_delivery([event])
    assert isinstance(classify(raw, SUBS, OWN), Drop)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff", "'utf-8' codec can't decode byte 0xff"),
        (b'{"id": "\xc3\x28"}', "'utf-8' codec can't decode"),
        ('{"data": ' * 10_000, "nests far too deeply"),
        (b"[" * 100_000, "nests far too deeply"),
    ],
    ids=["invalid-utf8", "invalid-utf8-inside-a-string", "data-10000-deep", "100000-open-brackets"],
)
def test_decode_delivery_says_why_a_body_is_unreadable_in_one_line(body, message):
    with pytest.raises(EventError, match=message) as raised:
        decode_delivery(body)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 300


def test_the_keys_of_an_unrecognised_event_are_shown_short():
    (raw,) = parse_delivery([{"k" * 1000: 1, "line\nbreak": 2}])
    assert "neither Event Grid schema" in raw.problem
    assert "\n" not in raw.problem and "k" * 100 not in raw.problem


# --- the screen: irrelevant events are dropped before any SDK object is built -----------------

EVENT_TYPES = [WRITE_SUCCESS, ACTION_SUCCESS, "Microsoft.Resources.ResourceDeleteSuccess", "Other.Type", ""]
OPERATIONS = [
    "Microsoft.ContainerService/managedClusters/agentPools/write",
    "Microsoft.ContainerService/managedClusters/write",
    "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action",
    STORAGE_WRITE,
    "",
    None,
]


def _sample_event(event_type: str, operation: str | None, cloud: bool) -> dict:
    subject = f"/subscriptions/{SUB}/resourceGroups/rg/{POOL_PATH}"
    data = {"operationName": operation} if operation is not None else {}
    if cloud:
        return {"specversion": "1.0", "id": "e1", "source": "/x", "type": event_type, "subject": subject, "data": data}
    return {
        "id": "e1",
        "topic": "/x",
        "subject": subject,
        "eventType": event_type,
        "eventTime": "2026-12-01T10:00:00.1234567Z",
        "dataVersion": "1",
        "data": data,
    }


@given(st.sampled_from(EVENT_TYPES), st.sampled_from(OPERATIONS), st.booleans())
def test_the_screen_drops_only_what_the_full_read_drops_too(event_type, operation, cloud):
    event = _sample_event(event_type, operation, cloud)
    [raw] = parse_delivery([event])
    full = classify(raw, SUBS, OWN)  # a RawEvent skips the screen
    try:
        screened = classify(event, SUBS, OWN)
    except EventError:  # a mapping that cannot be read raises; read from a delivery, it is a Drop
        assert raw.problem and isinstance(full, Drop)
        return
    assert type(screened) is type(full)
    assert (screened.event_id, screened.event_type) == (full.event_id, full.event_type)


def test_an_irrelevant_event_builds_no_sdk_object(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an SDK object was built for an event the type and operation already drop")

    monkeypatch.setattr("azure.eventgrid.EventGridEvent.from_dict", refuse)
    monkeypatch.setattr("azure.core.messaging.CloudEvent.from_dict", refuse)
    for cloud in (False, True):
        dropped = classify(_sample_event(WRITE_SUCCESS, STORAGE_WRITE, cloud), SUBS, OWN)
        assert isinstance(dropped, Drop) and "cannot change the SSH access" in dropped.reason
    with pytest.raises(AssertionError, match="SDK object"):  # a kept CloudEvent is read by the SDK
        classify(_sample_event(WRITE_SUCCESS, OPERATIONS[0], cloud=True), SUBS, OWN)
    # A kept Event Grid event is read here (its fields checked, its time as RFC 3339): no SDK object.
    assert isinstance(classify(_sample_event(WRITE_SUCCESS, OPERATIONS[0], cloud=False), SUBS, OWN), Hint)
