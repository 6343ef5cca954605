"""AKS node-pool rolling events come from each cluster's own system topic, wired by hand per
cluster as docs/deploy.md shows (the deployment wires the subscriptions' ARM topics only): the
documented commands must name the event types the app acts on and the app's trigger."""

from __future__ import annotations

import re
from pathlib import Path

from shared.core.node_events import ROLLING_TYPES
from tests.infra.bicep_model import INFRA, load

DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def documented_commands() -> str:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    section = text.split("## Node-pool rolling events of a cluster", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    return block.replace("\\\n", " ")


def test_the_documented_subscription_lets_through_exactly_the_rolling_events_the_app_acts_on():
    commands = documented_commands()
    included = commands.split("--included-event-types", 1)[1].split()
    assert set(included) == set(ROLLING_TYPES)


def test_it_reads_the_cluster_s_system_topic_and_calls_the_app_s_event_grid_trigger():
    commands = documented_commands()
    assert "--topic-type Microsoft.ContainerService.ManagedClusters" in commands
    assert "--endpoint-type azurefunction" in commands
    [output] = re.findall(r"azd env get-value (\w+)", commands)
    assert output in load(INFRA / "main.bicep").outputs, "the endpoint is the deployment's event function"
    assert "--event-delivery-schema eventgridschema" in commands, "the schema of the ARM subscription"


def test_the_deployment_subscribes_no_rolling_events_itself():
    subscription = load(INFRA / "modules" / "arm-event-subscription.bicep")
    included = subscription.evaluate(subscription.resource("warden")["properties"]["filter"])["includedEventTypes"]
    assert not set(included) & set(ROLLING_TYPES)
