"""The SSH policy: parse and validate its JSON, then say which mode a pool should have.

Pure: no I/O. A policy that does not validate is rejected whole with a `PolicyError`
naming the JSON path of the bad field — fail closed, never half a policy.

    {"default": "Disabled",
     "rules": [{"name": "dev clusters use Entra ID",
                "match": {"subscription": "<guid>", "resourceGroup": "rg-dev-*", "cluster": "dev-*",
                          "pool": "*", "os": "Linux", "clusterTags": {"env": "dev"}},
                "sshAccess": "EntraId"}],
     "upgrade": {"window": "immediate"},
     "verify": {"sample": 2}}

First matching rule wins, else `default`. Names match as case-insensitive globs; the
subscription must be equal (case-insensitive); every `clusterTags` entry must be present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from shared.core.errors import PolicyError
from shared.core.models import Cluster, Pool, SshAccess

IGNORE = "ignore"
OS_TYPES = ("Linux", "Windows")
NODE_OS_WINDOW = "nodeOSSchedule"  # upgrade.window: node-image upgrades only in the node-OS window
UPGRADE_WINDOWS = ("immediate", NODE_OS_WINDOW)
MATCH_FIELDS = ("subscription", "resourceGroup", "cluster", "pool", "os", "clusterTags")
DEFAULT_POLICY_JSON = '{"default": "Disabled"}'
DEFAULT_SAMPLE = 2  # nodes verified per pool
MAX_SAMPLE = 1000  # AKS allows at most 1,000 nodes per pool


@dataclass(frozen=True)
class Match:
    subscription: str | None = None
    resource_group: str | None = None
    cluster: str | None = None
    pool: str | None = None
    os: str | None = None
    cluster_tags: Mapping[str, str] = field(default_factory=dict)

    def matches(self, cluster: Cluster, pool: Pool) -> bool:
        return (
            _equal(self.subscription, cluster.ref.subscription)
            and _glob(self.resource_group, cluster.ref.resource_group)
            and _glob(self.cluster, cluster.ref.name)
            and _glob(self.pool, pool.name)
            and _equal(self.os, pool.os_type)
            and _tags_match(self.cluster_tags, cluster.tags)
        )


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match
    ssh_access: SshAccess | None  # None: leave the pool alone ("ignore")


@dataclass(frozen=True)
class Decision:
    """What the policy asks of one pool, and which rule said so."""

    desired: SshAccess | None  # None: ignore
    rule: str


@dataclass(frozen=True)
class Policy:
    default: SshAccess | None
    rules: tuple[Rule, ...] = ()
    upgrade_window: str = "immediate"
    verify_sample: int | None = DEFAULT_SAMPLE  # nodes checked per pool; None: all of them

    def decide(self, cluster: Cluster, pool: Pool) -> Decision:
        for rule in self.rules:
            if rule.match.matches(cluster, pool):
                return Decision(rule.ssh_access, f"rule {rule.name!r}")
        return Decision(self.default, "default")


def load_policy(text: str) -> Policy:
    """Parse policy JSON text; any problem raises `PolicyError` with the field's JSON path."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise PolicyError("$", f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
    return parse_policy(document)


def parse_policy(document: Any) -> Policy:
    _require_object(document, "$", ("default", "rules", "upgrade", "verify"))
    default = _parse_mode(document.get("default", SshAccess.DISABLED.value), "$.default")
    rules = document.get("rules", [])
    if not isinstance(rules, list):
        raise PolicyError("$.rules", f"must be a list of rules, not {_kind(rules)}")
    parsed = tuple(_parse_rule(rule, f"$.rules[{i}]") for i, rule in enumerate(rules))
    _require_unique_names(parsed)
    upgrade_window = _parse_upgrade(document.get("upgrade", {}), "$.upgrade")
    return Policy(default, parsed, upgrade_window, _parse_verify(document.get("verify", {}), "$.verify"))


def _parse_rule(rule: Any, path: str) -> Rule:
    _require_object(rule, path, ("name", "match", "sshAccess"))
    name = rule.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{path}.name", "is required: a non-empty string naming the rule in the audit trail")
    if "sshAccess" not in rule:
        raise PolicyError(f"{path}.sshAccess", f"is required: one of {_mode_choices()}")
    return Rule(
        name, _parse_match(rule.get("match", {}), f"{path}.match"), _parse_mode(rule["sshAccess"], f"{path}.sshAccess")
    )


def _parse_match(match: Any, path: str) -> Match:
    _require_object(match, path, MATCH_FIELDS)
    for key in ("subscription", "resourceGroup", "cluster", "pool", "os"):
        value = match.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise PolicyError(f"{path}.{key}", f"must be a non-empty string, not {value!r}")
    os_type = match.get("os")
    if os_type is not None and os_type.lower() not in (o.lower() for o in OS_TYPES):
        raise PolicyError(f"{path}.os", f"is {os_type!r}; expected one of {', '.join(OS_TYPES)}")
    tags = match.get("clusterTags", {})
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise PolicyError(
            f"{path}.clusterTags", 'must be an object of string tag names to string values, e.g. {"env": "dev"}'
        )
    return Match(
        match.get("subscription"),
        match.get("resourceGroup"),
        match.get("cluster"),
        match.get("pool"),
        os_type,
        dict(tags),
    )


def _parse_upgrade(upgrade: Any, path: str) -> str:
    _require_object(upgrade, path, ("window",))
    window = upgrade.get("window", "immediate")
    for choice in UPGRADE_WINDOWS:
        if isinstance(window, str) and window.lower() == choice.lower():
            return choice
    raise PolicyError(f"{path}.window", f"is {window!r}; expected one of {', '.join(UPGRADE_WINDOWS)}")


def _parse_verify(verify: Any, path: str) -> int | None:
    _require_object(verify, path, ("sample",))
    sample = verify.get("sample", DEFAULT_SAMPLE)
    if isinstance(sample, str) and sample.lower() == "all":
        return None
    if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= MAX_SAMPLE:
        raise PolicyError(
            f"{path}.sample", f"is {sample!r}; expected a number of nodes per pool, 1 to {MAX_SAMPLE}, or 'all'"
        )
    return sample


def _parse_mode(value: Any, path: str) -> SshAccess | None:
    if isinstance(value, str) and value:
        if value.lower() == IGNORE:
            return None
        try:
            return SshAccess.parse(value)
        except ValueError:
            pass
    raise PolicyError(path, f"is {value!r}; expected one of {_mode_choices()}")


def _mode_choices() -> str:
    return ", ".join([m.value for m in SshAccess] + [IGNORE])


def _require_object(value: Any, path: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise PolicyError(path, f"must be a JSON object, not {_kind(value)}")
    for key in value:
        if key not in allowed:
            raise PolicyError(f"{path}.{key}", f"is not a known field; expected one of {', '.join(allowed)}")


def _require_unique_names(rules: tuple[Rule, ...]) -> None:
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name.lower() in seen:
            raise PolicyError(
                f"$.rules[{i}].name", f"{rule.name!r} is used by an earlier rule; rule names must be unique"
            )
        seen.add(rule.name.lower())


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _glob(pattern: str | None, value: str) -> bool:
    return pattern is None or fnmatchcase(value.lower(), pattern.lower())


def _equal(expected: str | None, value: str) -> bool:
    return expected is None or expected.lower() == value.lower()


def _tags_match(wanted: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """Tag names are case-insensitive in Azure; values match as case-insensitive globs."""
    actual = {k.lower(): v for k, v in (tags or {}).items()}
    return all(k.lower() in actual and _glob(v, actual[k.lower()]) for k, v in wanted.items())
