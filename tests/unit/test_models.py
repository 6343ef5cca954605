"""Resource ids and modes: parsing that every trigger relies on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.errors import OutOfScopeError, shown
from shared.core.models import SshAccess, Target, kubernetes_minor, validate_pool_name

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


# --- AKS and ARM naming rules ------------------------------------------------------------------

POOL_ID = CLUSTER + "/agentPools/np1"
LONG = "a" * 1000


def with_names(resource_group: str = "rg1", cluster: str = "aks1", pool: str | None = None) -> str:
    base = f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService"
    return f"{base}/managedClusters/{cluster}" + (f"/agentPools/{pool}" if pool is not None else "")


BAD_NAMES = {
    "pool-1000-chars": (with_names(pool=LONG), "pool name", "1-12 lowercase letters and digits"),
    "cluster-question-mark": (with_names(cluster="aks?x"), "'aks?x'", "1-63 letters, digits"),
    "cluster-encoded-slash": (with_names(cluster="aks%2Fx"), "'aks%2Fx'", "1-63 letters, digits"),
    "pool-encoded-slash": (with_names(pool="np%2F1"), "'np%2F1'", "1-12 lowercase"),
    "rg-encoded-slash": (with_names(resource_group="rg%2F1"), "'rg%2F1'", "periods and parentheses"),
    "cluster-hash": (with_names(cluster="aks#1"), "'aks#1'", "1-63 letters, digits"),
    "pool-hash": (with_names(pool="np#1"), "'np#1'", "1-12 lowercase"),
    "cluster-space": (with_names(cluster="aks 1"), "'aks 1'", "1-63 letters, digits"),
    "pool-space": (with_names(pool="np 1"), "'np 1'", "1-12 lowercase"),
    "rg-space": (with_names(resource_group="rg 1"), "'rg 1'", "periods and parentheses"),
    "cluster-trailing-hyphen": (with_names(cluster="aks-"), "'aks-'", "ending with a letter or digit"),
    "cluster-leading-underscore": (with_names(cluster="_aks"), "'_aks'", "starting and ending"),
    "cluster-64-chars": (with_names(cluster="a" * 64), "'" + "a" * 64 + "'", "1-63"),
    "cluster-dot": (with_names(cluster="aks.1"), "'aks.1'", "1-63 letters, digits"),
    "cluster-newline": (with_names(cluster="aks1\n"), r"'aks1\n'", "1-63"),
    "pool-13-chars": (with_names(pool="nodepool12345"), "'nodepool12345'", "1-12"),
    "pool-starts-with-digit": (with_names(pool="1np"), "'1np'", "starting with a letter"),
    "pool-hyphen": (with_names(pool="np-1"), "'np-1'", "lowercase letters and digits"),
    "rg-trailing-period": (with_names(resource_group="rg."), "'rg.'", "not ending in a period"),
    "rg-91-chars": (with_names(resource_group="r" * 91), "(91 characters)", "1-90"),
    "rg-superscript-two": (with_names(resource_group="rg²"), "'rg²'", "periods and parentheses"),
    "rg-plus": (with_names(resource_group="rg+1"), "'rg+1'", "periods and parentheses"),
}


@pytest.mark.parametrize(("resource_id", "value", "rule"), BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_names_that_break_the_naming_rules_are_refused_with_the_rule_and_value(resource_id, value, rule):
    with pytest.raises(OutOfScopeError) as raised:
        Target.from_id(resource_id)
    message = str(raised.value)
    assert "naming rule" in message and rule in message and value in message
    assert LONG not in message and len(message) < 300  # one readable line, never the whole input
    assert "\n" not in message


@pytest.mark.parametrize(
    ("resource_id", "names"),
    [
        (with_names(cluster="a"), ("rg1", "a", None)),
        (with_names(cluster="A" * 63), ("rg1", "A" * 63, None)),
        (with_names(cluster="aks_dev-1"), ("rg1", "aks_dev-1", None)),
        (with_names(pool="n"), ("rg1", "aks1", "n")),
        (with_names(pool="nodepool1234"), ("rg1", "aks1", "nodepool1234")),
        (with_names(pool="NodePool1"), ("rg1", "aks1", "NodePool1")),
        (with_names(resource_group="r" * 90), ("r" * 90, "aks1", None)),
        (with_names(resource_group="rg.(dev)_1-x"), ("rg.(dev)_1-x", "aks1", None)),
        (with_names(resource_group="règle-ü"), ("règle-ü", "aks1", None)),
        (with_names(resource_group="re\u0301gle"), ("re\u0301gle", "aks1", None)),
        (POOL_ID + "/", ("rg1", "aks1", "np1")),
    ],
    ids=[
        "cluster-1-char",
        "cluster-63-chars",
        "cluster-underscore-hyphen",
        "pool-1-char",
        "pool-12-chars",
        "pool-mixed-case",
        "rg-90-chars",
        "rg-punctuation",
        "rg-unicode-letters",
        "rg-combining-accent",
        "trailing-slash",
    ],
)
def test_names_at_the_limits_of_the_rules_are_accepted(resource_id, names):
    target = Target.from_id(resource_id)
    assert (target.cluster.resource_group, target.cluster.name, target.pool) == names


@pytest.mark.parametrize(
    "resource_id",
    [
        POOL_ID + "/machines/x",
        POOL_ID + "\n/x",
        CLUSTER + "/agentPools",
        CLUSTER + "/whatever",
        CLUSTER.replace("/managedClusters", "//managedClusters"),
        CLUSTER + "//agentPools/np1",
        "/subscriptions/" + SUB + "/resourceGroups/" + LONG,
    ],
    ids=["grandchild", "newline-then-more", "pools-without-name", "odd-child", "double-slash", "empty-child", "long"],
)
def test_ids_with_anything_beyond_a_cluster_or_pool_are_refused(resource_id):
    with pytest.raises(OutOfScopeError, match="not an AKS managed-cluster or agent-pool resource id") as raised:
        Target.from_id(resource_id)
    assert LONG not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("np1", True), ("NP1", True), ("", False), (LONG, False), ("np_1", False), (1, False), (None, False)],
    ids=["plain", "upper-case", "empty", "1000-chars", "underscore", "number", "null"],
)
def test_validate_pool_name_returns_the_name_unchanged_or_refuses_it(name, valid):
    if valid:
        assert validate_pool_name(name) == name
    else:
        with pytest.raises(OutOfScopeError, match="naming rule: an AKS pool name is 1-12"):
            validate_pool_name(name)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("np1", "'np1'"),
        ("x" * 81, "'" + "x" * 80 + "'… (81 characters)"),
        (list(range(100)), repr(list(range(100)))[:80] + "…"),
        ("a\nb", r"'a\nb'"),
    ],
    ids=["short", "cut", "long-list", "newline"],
)
def test_shown_values_are_one_short_line(value, text):
    assert shown(value) == text


def test_shown_survives_a_value_too_deep_to_repr():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert shown(deep) == "a deeply nested list"
