"""Resource ids and modes: parsing that every trigger relies on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import OutOfScopeError
from shared.models import SshAccess, Target, kubernetes_minor

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1"


@pytest.mark.parametrize(
    ("resource_id", "pool"),
    [
        (CLUSTER, None),
        (CLUSTER + "/agentPools/np1", "np1"),
        (
            CLUSTER.replace("resourceGroups", "resourcegroups").upper().replace(SUB.upper(), SUB) + "/AGENTPOOLS/NP1",
            "NP1",
        ),
    ],
    ids=["cluster", "pool", "casing"],
)
def test_target_from_id(resource_id, pool):
    target = Target.from_id(resource_id)
    assert target.pool == pool
    assert target.cluster.key == CLUSTER.lower()


@pytest.mark.parametrize(
    "resource_id",
    [
        "",
        "garbage",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/sa",
        CLUSTER + "/maintenanceConfigurations/default",
        CLUSTER.replace(SUB, "not-a-guid"),
        f"/subscriptions/{SUB}/resourceGroups/rg1",
    ],
    ids=["empty", "garbage", "storage", "maintenance-config", "bad-sub", "rg-only"],
)
def test_non_aks_ids_are_out_of_scope(resource_id):
    with pytest.raises(OutOfScopeError, match="not an AKS"):
        Target.from_id(resource_id)


@given(st.sampled_from(list(SshAccess)), st.lists(st.booleans(), min_size=12, max_size=12))
def test_modes_parse_in_any_case(mode, upper):
    text = "".join(c.upper() if u else c.lower() for c, u in zip(mode.value, upper, strict=False))
    assert SshAccess.parse(text) is mode


def test_missing_mode_is_local_user_and_unknown_is_refused():
    assert SshAccess.parse(None) is SshAccess.LOCAL_USER
    with pytest.raises(ValueError, match="'Open'"):
        SshAccess.parse("Open")


@pytest.mark.parametrize(
    ("version", "minor"), [("1.37.2", (1, 37)), ("v1.9", (1, 9)), ("", (0, 0)), ("latest", (0, 0))]
)
def test_kubernetes_minor(version, minor):
    assert kubernetes_minor(version) == minor
