"""The Bicep under infra/ as data, for the infrastructure tests (the Bicep CLI is not available here).

`pycep-parser` (the parser checkov uses) turns each file into a dict; `Template.evaluate` works out
an expression for given parameter values, far enough for the tests: literals, parameters and
variables, `loadJsonContent`, conditions, comparisons, `empty`, `concat`, `union`,
`split`, `join`, `replace`, `toLower`, `string`, `base64ToString` and `${name}` interpolation.
Anything only Azure knows at deployment (a resource property, a module output, `guid()`) evaluates
to `Unknown`. pycep writes a reference to a name and a string literal alike; a string that names a
parameter or variable is read as that reference, so no literal in infra/ may equal such a name.

The `*_problems` functions return what is wrong with an infra folder, so that the tests can run
them on the real folder (expecting none) and on altered copies (expecting each problem).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
# Built-in roles that hand out everything, or the right to hand out rights.
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_GUID = re.compile(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class Unknown:
    """A value only Azure knows at deployment time; `expr` is what pycep parsed. Its `str` is the
    expression, roughly as Bicep writes it (`identities.outputs.appClientId`)."""

    expr: Any

    def __str__(self) -> str:
        return _bicep_text(self.expr)


def _bicep_text(expr: Any) -> str:
    if isinstance(expr, dict) and "operator" in expr:
        expr = expr["operator"]
    if isinstance(expr, dict) and "function" in expr:
        expr = expr["function"]
    if isinstance(expr, dict) and expr.get("type") in ("property_accessor", "nested_resource_accessor"):
        return ".".join(_bicep_text(expr["operands"][k]) for k in ("operand_1", "operand_2"))
    if isinstance(expr, dict) and "type" in expr and "operands" not in expr:
        args = ", ".join(_bicep_text(a) for a in (expr.get("parameters") or {}).values() if a is not None)
        prop = f".{expr['property_name']}" if expr.get("property_name") else ""
        return f"{expr['type']}({args}){prop}"
    return expr if isinstance(expr, str) else json.dumps(expr)


def bicep_files(infra: Path = INFRA) -> list[Path]:
    return sorted(infra.rglob("*.bicep"))


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def _parse(text: str) -> dict:
    return _parser().parse(text=text)


def load(path: Path) -> Template:
    """The template at `path`; a text parsed once is not parsed again (copies of infra/ reuse it)."""
    return Template(path, _parse(path.read_text(encoding="utf-8")))


class Template:
    def __init__(self, path: Path, parsed: dict):
        self.path = path
        self.parsed = parsed
        self.params: dict = parsed.get("parameters", {})
        self.variables: dict = parsed.get("variables", {})
        self.resources: dict = parsed.get("resources", {})
        self.modules: dict = parsed.get("modules", {})
        self.outputs: dict = parsed.get("outputs", {})

    @property
    def scope(self) -> str:
        return self.parsed.get("globals", {}).get("scope", {}).get("value", "resourceGroup")

    def resource(self, name: str) -> dict:
        """The resource's body (for a loop or a condition: the body repeated, or made only if it holds)."""
        config = self.resources[name]["config"]
        return config["config"] if "loop_type" in config or "condition" in config else config

    def resources_of_type(self, resource_type: str) -> Iterator[tuple[str, dict]]:
        for name, resource in self.resources.items():
            if resource["type"].lower() == resource_type.lower() and not resource.get("existing"):
                yield name, self.resource(name)

    def module(self, name: str) -> tuple[dict, Any]:
        """The module's body and its condition (None when unconditional)."""
        config = self.modules[name]["config"]
        wrapped = "loop_type" in config or "condition" in config
        return (config["config"], config.get("condition")) if wrapped else (config, None)

    def allowed(self, param: str) -> list:
        [allowed] = [d["argument"] for d in self.params[param]["decorators"] if d["type"] == "allowed"]
        return allowed

    def module_path(self, name: str) -> Path:
        return (self.path.parent / self.modules[name]["detail"]["path"]).resolve()

    def defaults(self) -> dict[str, Any]:
        return {name: p.get("default") for name, p in self.params.items()}

    def evaluate(self, expr: Any, values: Mapping[str, Any] | None = None) -> Any:
        """`expr` worked out with the parameters at their defaults, overridden by `values`."""
        return _Evaluator(self, {**self.defaults(), **(values or {})}).value(expr)

    def variable(self, name: str, values: Mapping[str, Any] | None = None) -> Any:
        return self.evaluate(self.variables[name]["value"], values)


class _Evaluator:
    def __init__(self, template: Template, params: dict[str, Any]):
        self.template = template
        self.params = params

    def value(self, expr: Any) -> Any:
        if isinstance(expr, str):
            return self.name(expr)
        if isinstance(expr, list):
            return [self.value(item) for item in expr]
        if isinstance(expr, dict):
            if set(expr) == {"operator"}:
                return self.operator(expr["operator"])
            if set(expr) == {"function"}:
                return self.function(expr["function"])
            return {key: self.value(item) for key, item in expr.items()}
        return expr

    def name(self, text: str) -> Any:
        if text in self.params:
            return self.params[text]
        if text in self.template.variables:
            return self.value(self.template.variables[text]["value"])
        return _INTERPOLATION.sub(self._interpolated, text)

    def _interpolated(self, match: re.Match) -> str:
        resolved = self.name(match.group(1)) if match.group(1) in {**self.params, **self.template.variables} else None
        return resolved if isinstance(resolved, str) else match.group(0)

    def operator(self, op: dict) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "conditional":
            condition = self.value(operands["condition"])
            if isinstance(condition, Unknown):
                return Unknown(op)
            return self.value(operands["true_value"] if condition else operands["false_value"])
        if kind == "property_accessor":
            target = self.value(operands["operand_1"])
            if isinstance(target, dict) and isinstance(operands["operand_2"], str):
                return target.get(operands["operand_2"], Unknown(op))
            return Unknown(op)
        if kind == "not":
            inner = self.value(operands["bool_value"])
            return Unknown(op) if isinstance(inner, Unknown) else not inner
        values = [self.value(operands[key]) for key in sorted(operands)]
        if any(isinstance(v, Unknown) for v in values):
            return Unknown(op)
        combine = {
            "equals": lambda a, b: a == b,
            "not_equals": lambda a, b: a != b,
            "and": lambda a, b: a and b,
            "or": lambda a, b: a or b,
        }.get(kind)
        return combine(*values) if combine else Unknown(op)

    def function(self, fn: dict) -> Any:
        args = [self.value(arg) for arg in (fn.get("parameters") or {}).values()]
        result = self._call(fn, args)
        prop = fn.get("property_name")
        if prop:
            return result.get(prop, Unknown(fn)) if isinstance(result, dict) else Unknown(fn)
        return result

    def _call(self, fn: dict, args: list) -> Any:
        kind = fn["type"]
        if kind == "load_json_content":
            return json.loads((self.template.path.parent / fn["parameters"]["file_path"]).read_text(encoding="utf-8"))
        present = [a for a in args if a is not None]
        # concat and union only combine, so what they combine may hold unknowns.
        if _holds_unknown(present) if kind not in ("concat", "union") else any(isinstance(a, Unknown) for a in present):
            return Unknown(fn)
        simple = {
            "empty": lambda v: not v,
            "concat": lambda *parts: sum((list(p) for p in parts), []),
            "union": _union,
            "split": lambda text, sep: text.split(sep),
            "join": lambda items, sep: sep.join(items),
            "replace": lambda text, old, new: text.replace(old, new),
            "to_lower": str.lower,
            "string": str,
            "base64_to_string": lambda v: base64.b64decode(v).decode(),
        }.get(kind)
        return simple(*present) if simple else Unknown(fn)


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_unknown(v) for v in value.values())
    return False


def _union(*parts: Any) -> Any:
    if all(isinstance(p, dict) for p in parts):
        merged: dict = {}
        for part in parts:
            merged.update(part)
        return merged
    return list(dict.fromkeys(item for part in parts for item in part))


# --- what the tests look for --------------------------------------------------------------


def app_settings(values: Mapping[str, Any] | None = None, infra: Path = INFRA) -> dict[str, Any]:
    """The Function App's settings (name -> value) for main.bicep parameter `values`."""
    main = load(infra / "main.bicep")
    body, _ = main.module("functionApp")
    return {s["name"]: s["value"] for s in main.evaluate(body["params"]["appSettings"], values)}


def missing_settings(names: set[str], infra: Path = INFRA) -> list[str]:
    """The names among `names` that the deployment sets in no configuration. A connection
    (`AzureWebJobsStorage`) also counts as set by its identity-based form `<name>__...`."""
    deployed: set[str] = set()
    for backend in load(infra / "main.bicep").allowed("durableBackend"):
        deployed |= set(app_settings({"durableBackend": backend}, infra))
    return sorted(n for n in names if n not in deployed and not any(d.startswith(f"{n}__") for d in deployed))


def role_ids(infra: Path = INFRA) -> dict[str, str]:
    return json.loads((infra / "roles.json").read_text(encoding="utf-8"))


def broad_role_problems(infra: Path = INFRA) -> list[str]:
    """Every mention of a broad built-in role (roles are named only by their GUIDs, so this
    finds every grant of one), and every custom role with a wildcard or an authorization
    action, for any value of its boolean parameters."""
    problems = []
    for path in bicep_files(infra):
        template = load(path)
        text = path.read_text(encoding="utf-8")
        for guid in {g.group(0).lower() for g in _GUID.finditer(text)} & BROAD_ROLES.keys():
            problems.append(f"{path.name} names the {BROAD_ROLES[guid]} role ({guid})")
        for name, _ in template.resources_of_type(ROLE_DEFINITION):
            for action in custom_role_actions(template, name, {}, all_branches=True):
                if "*" in action or action.lower().startswith("microsoft.authorization/"):
                    problems.append(f"{path.name}: custom role {name} allows {action!r}")
    for guid in {v.lower() for v in role_ids(infra).values()} & BROAD_ROLES.keys():
        problems.append(f"roles.json lists the {BROAD_ROLES[guid]} role")
    return problems


def custom_role_actions(
    template: Template, name: str, values: Mapping[str, Any], all_branches: bool = False
) -> set[str]:
    """The actions of custom role `name` for parameter `values` (`all_branches`: of every value
    each boolean parameter can take)."""
    [permissions] = template.resource(name)["properties"]["permissions"]
    if not all_branches:
        return set(template.evaluate(permissions["actions"], values))
    flags = [p for p, spec in template.params.items() if spec["type"] == "bool"]
    actions: set[str] = set()
    for bits in range(2 ** len(flags)):
        choice = {flag: bool(bits >> i & 1) for i, flag in enumerate(flags)}
        actions |= set(template.evaluate(permissions["actions"], {**values, **choice}))
    return actions
