"""ARM's effective permissions, as the doctor judges them: wildcards, notActions, case."""

from __future__ import annotations

import pytest

from shared.preflight.permissions import ENFORCEMENT_ACTIONS, NODE_ACTIONS, missing, required_actions

RUN_COMMAND = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action"


@pytest.mark.parametrize(
    ("entries", "absent"),
    [
        ([{"actions": ["*"], "notActions": []}], []),
        ([{"actions": ["Microsoft.Compute/*"]}], []),
        (
            [{"actions": ["microsoft.compute/virtualmachinescalesets/*"]}],
            ["Microsoft.Compute/locations/operations/read"],
        ),
        ([{"actions": ["*/read"]}], [RUN_COMMAND]),
        ([{"actions": ["*"], "notActions": ["Microsoft.Compute/*/action"]}], [RUN_COMMAND]),
        ([{"actions": ["*"], "notActions": [RUN_COMMAND]}, {"actions": [RUN_COMMAND]}], []),
        ([], list(NODE_ACTIONS)),
        ([{"actions": None, "notActions": None}], list(NODE_ACTIONS)),
    ],
    ids=[
        "owner",
        "provider-wildcard",
        "any-casing",
        "reader",
        "denied-by-not-actions",
        "another-entry-allows",
        "none",
        "nulls",
    ],
)
def test_an_action_is_allowed_by_one_entry_that_does_not_exclude_it(entries, absent):
    assert missing(NODE_ACTIONS, entries) == absent


def test_key_rotation_adds_the_cluster_write_only():
    assert required_actions(False) == ENFORCEMENT_ACTIONS
    assert set(required_actions(True)) - set(ENFORCEMENT_ACTIONS) == {
        "Microsoft.ContainerService/managedClusters/write"
    }


def test_a_pattern_is_not_a_regular_expression():
    assert missing(["Microsoft.Compute/x"], [{"actions": ["Microsoft.Compute.x"]}]) == ["Microsoft.Compute/x"]
