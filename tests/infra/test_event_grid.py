"""The Event Grid wiring (infra/eventgrid.bicep, deployed by the postdeploy hook) against the code
that receives the events: the same event types and operations the app acts on, its trigger
function, retries to Event Grid's limit, and dead-lettering with an identity."""

from __future__ import annotations

from shared.core import events
from shared.triggers.event_grid import EVENT_FUNCTION
from tests.infra.bicep_model import INFRA, load

MODULES = INFRA / "modules"


def event_subscription() -> dict:
    return load(MODULES / "arm-event-subscription.bicep").resource("warden")["properties"]


def operations_the_app_acts_on() -> set[str]:
    return {op.lower() for op in events._WRITES | events._RECHECK_ACTIONS}


def test_the_filter_passes_exactly_the_events_the_app_acts_on():
    template = load(MODULES / "arm-event-subscription.bicep")
    event_filter = template.evaluate(event_subscription()["filter"])
    assert set(event_filter["includedEventTypes"]) == {events.WRITE_SUCCESS, events.ACTION_SUCCESS}
    [operation_filter] = event_filter["advancedFilters"]
    assert (operation_filter["operatorType"], operation_filter["key"]) == ("StringIn", "data.operationName")
    assert {op.lower() for op in operation_filter["values"]} == operations_the_app_acts_on()


def test_every_operation_let_through_is_classified_as_work():
    template = load(MODULES / "arm-event-subscription.bicep")
    pool = "/subscriptions/3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/p"
    for operation in template.variable("aksOperations"):
        event_type = events.WRITE_SUCCESS if operation.endswith("/write") else events.ACTION_SUCCESS
        raw = {
            "id": "1",
            "topic": "/subscriptions/3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d",
            "subject": pool,
            "eventType": event_type,
            "eventTime": "2026-11-24T12:00:00Z",
            "dataVersion": "2",
            "data": {"operationName": operation, "resourceUri": pool, "status": "Succeeded"},
        }
        parsed = events.parse_event(raw)
        verdict = events.classify(parsed, frozenset({"3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"}), frozenset())
        assert not isinstance(verdict, events.Drop), f"{operation}: {verdict}"


def test_events_go_to_the_app_s_event_grid_trigger():
    destination = event_subscription()["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "functionResourceId"
    main = load(INFRA / "main.bicep")
    assert main.variable("eventFunctionName") == EVENT_FUNCTION
    assert main.outputs["EVENTGRID_FUNCTION_ID"]["value"] == "${functionApp.outputs.id}/functions/${eventFunctionName}"


def test_deliveries_are_retried_to_event_grid_s_limit():
    assert event_subscription()["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}


def test_undeliverable_events_are_dead_lettered_with_the_events_identity():
    template = load(MODULES / "arm-event-subscription.bicep")
    dead_letter = event_subscription()["deadLetterWithResourceIdentity"]
    on = template.evaluate(dead_letter, {"deadLetterIdentityId": "events-identity"})
    assert on["identity"] == {"type": "UserAssigned", "userAssignedIdentity": "events-identity"}
    assert on["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert template.evaluate(dead_letter, {"deadLetterIdentityId": ""}) is None, "a topic made elsewhere: none"
    wiring = load(INFRA / "eventgrid.bicep")
    body, _ = wiring.module("eventSubscription")
    identity = body["params"]["deadLetterIdentityId"]
    assert wiring.evaluate(identity, {"createTopic": True, "eventsIdentityId": "id-events"}) == "id-events"
    assert wiring.evaluate(identity, {"createTopic": False, "eventsIdentityId": "id-events"}) == ""
    main = load(INFRA / "main.bicep")
    storage, _ = main.module("storage")
    assert storage["params"]["deadLetterContainerName"] == "deadLetterContainerName"
    assert main.outputs["EVENTGRID_DEADLETTER_CONTAINER"]["value"] == "deadLetterContainerName"


def test_one_subscription_level_system_topic_per_subscription():
    topic = load(MODULES / "arm-system-topic.bicep").resource("topic")
    assert (topic["location"], topic["properties"]["topicType"]) == ("global", "Microsoft.Resources.Subscriptions")
    assert topic["properties"]["source"] == {
        "function": {"type": "subscription", "parameters": {"subscription_id": None}, "property_name": "id"}
    }
    assert topic["identity"]["type"] == "UserAssigned"
    wiring = load(INFRA / "eventgrid.bicep")
    assert wiring.module("topic")[1] == "createTopic", "an existing topic is used, never a second one"
