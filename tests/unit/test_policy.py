"""The policy engine: validation with JSON paths, first-match evaluation, globs and tags."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.errors import PolicyError
from shared.core.models import Cluster, ClusterRef, Pool, SshAccess
from shared.policy import load_policy, parse_policy

SUB = "11111111-1111-1111-1111-111111111111"


def cluster(name="dev-aks", rg="rg-dev-weu", sub=SUB, tags=None, sku="Base"):
    return Cluster(ClusterRef(sub, rg, name), tags=tags or {}, sku_name=sku)


def pool(c, name="nodepool1", os_type="Linux"):
    return Pool(c.ref, name, os_type=os_type)


POLICY = {
    "default": "Disabled",
    "rules": [
        {"name": "windows stays local", "match": {"os": "Windows"}, "sshAccess": "LocalUser"},
        {
            "name": "dev entra",
            "match": {"resourceGroup": "RG-DEV-*", "clusterTags": {"ENV": "dev"}},
            "sshAccess": "entraid",
        },
        {
            "name": "legacy untouched",
            "match": {"subscription": SUB.upper(), "cluster": "legacy-*"},
            "sshAccess": "ignore",
        },
        {"name": "gpu pools", "match": {"pool": "gpu?"}, "sshAccess": "LocalUser"},
    ],
}


@pytest.mark.parametrize(
    ("c", "pool_name", "os_type", "expected", "rule"),
    [
        (cluster(), "nodepool1", "Windows", SshAccess.LOCAL_USER, "rule 'windows stays local'"),
        (cluster(tags={"env": "dev"}), "nodepool1", "Linux", SshAccess.ENTRA_ID, "rule 'dev entra'"),
        (cluster(tags={"env": "prod"}), "nodepool1", "Linux", SshAccess.DISABLED, "default"),
        (cluster(name="LEGACY-1", rg="rg-prod"), "np", "Linux", None, "rule 'legacy untouched'"),
        (cluster(rg="rg-prod"), "GPU1", "Linux", SshAccess.LOCAL_USER, "rule 'gpu pools'"),
        (cluster(rg="rg-prod"), "gpu12", "Linux", SshAccess.DISABLED, "default"),
    ],
    ids=[
        "os-first-match",
        "rg-glob-and-tag",
        "tag-mismatch-default",
        "ignore-case-insensitive",
        "pool-glob",
        "glob-exact-len",
    ],
)
def test_first_matching_rule_wins(c, pool_name, os_type, expected, rule):
    decision = parse_policy(POLICY).decide(c, pool(c, pool_name, os_type))
    assert (decision.desired, decision.rule) == (expected, rule)


def test_empty_policy_defaults_to_disabled():
    c = cluster()
    assert load_policy("{}").decide(c, pool(c)).desired is SshAccess.DISABLED


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"default": "Enabled"}, "$.default"),
        ({"default": None}, "$.default"),
        ({"rules": {}}, "$.rules"),
        ({"rules": [{"match": {}, "sshAccess": "Disabled"}]}, "$.rules[0].name"),
        ({"rules": [{"name": "a", "match": {}}]}, "$.rules[0].sshAccess"),
        ({"rules": [{"name": "a", "sshAccess": "Disabled"}, {"name": "b", "sshAccess": "x"}]}, "$.rules[1].sshAccess"),
        ({"rules": [{"name": "a", "match": {"os": "Darwin"}, "sshAccess": "Disabled"}]}, "$.rules[0].match.os"),
        (
            {"rules": [{"name": "a", "match": {"clusterTags": ["env"]}, "sshAccess": "Disabled"}]},
            "$.rules[0].match.clusterTags",
        ),
        ({"rules": [{"name": "a", "match": {"clsuter": "x"}, "sshAccess": "Disabled"}]}, "$.rules[0].match.clsuter"),
        ({"rules": [{"name": "a", "match": {"pool": ""}, "sshAccess": "Disabled"}]}, "$.rules[0].match.pool"),
        (
            {"rules": [{"name": "a", "sshAccess": "Disabled"}, {"name": "A", "sshAccess": "Disabled"}]},
            "$.rules[1].name",
        ),
        ({"upgrade": {"window": "weekends"}}, "$.upgrade.window"),
        ({"defaults": "Disabled"}, "$.defaults"),
        ([], "$"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_policy_names_the_json_path(document, path):
    with pytest.raises(PolicyError) as raised:
        parse_policy(document)
    assert raised.value.path == path
    assert path in str(raised.value)


def test_invalid_json_is_rejected_with_position():
    with pytest.raises(PolicyError, match=r"\$: is not valid JSON .* line 1"):
        load_policy('{"default": ')


def test_upgrade_window_is_parsed_case_insensitively():
    assert load_policy('{"upgrade": {"window": "nodeosschedule"}}').upgrade_window == "nodeOSSchedule"


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
modes = st.sampled_from(["Disabled", "EntraId", "LocalUser", "ignore", "DISABLED", "entraid", "localuser"])


@given(names, names, names, st.sampled_from(["Linux", "Windows"]), modes)
def test_a_rule_matching_the_exact_names_always_decides(rg, cluster_name, pool_name, os_type, mode):
    c = cluster(name=cluster_name, rg=rg)
    rule = {
        "name": "exact",
        "match": {"resourceGroup": rg.upper(), "cluster": cluster_name, "pool": pool_name, "os": os_type},
        "sshAccess": mode,
    }
    decision = parse_policy({"default": "LocalUser", "rules": [rule]}).decide(c, pool(c, pool_name, os_type))
    assert decision.rule == "rule 'exact'"
    assert decision.desired == (None if mode == "ignore" else SshAccess.parse(mode))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=10,
    )
)
def test_any_json_either_parses_or_raises_policy_error(document):
    try:
        policy = load_policy(json.dumps(document))
    except PolicyError as e:
        assert e.path.startswith("$")
    else:
        assert policy.upgrade_window in ("immediate", "nodeOSSchedule")
