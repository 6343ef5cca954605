"""Which layer may import which Azure SDK (import-linter sees only the top-level `azure`).

Pure core: no SDK but `azure.mgmt.core.tools` (ids) and, for event parsing, azure.eventgrid's
and azure.core's event models. SDK clients: adapters only. Functions/Durable: triggers,
the orchestration blueprint, and the local Durable host. Local tools may use anything.
"""

import ast
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FUNCTIONS = ("azure.functions", "azure.durable_functions")
CLIENTS = ("azure.mgmt", "azure.identity", "azure.data", "azure.keyvault", "azure.eventgrid", "azure.core")


def azure_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n.startswith("azure")}


def allowed(module: str) -> tuple[str, ...]:
    if module.startswith("local/"):
        return ("azure",)
    if module.startswith("adapters/"):
        return CLIENTS
    if module.startswith("triggers/") or module == "orchestration/functions.py":
        return FUNCTIONS
    if module == "core/events.py":
        return ("azure.mgmt.core.tools", "azure.eventgrid", "azure.core.messaging", "azure.core.exceptions")
    return ("azure.mgmt.core.tools",)


MODULES = sorted(str(p.relative_to(SHARED)) for p in SHARED.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_the_sdks_its_layer_may(module):
    permitted = allowed(module)
    bad = sorted(n for n in azure_imports(SHARED / module) if not n.startswith(permitted))
    assert not bad, f"shared/{module} imports {bad}; its layer may import only {permitted}"


def test_the_rule_catches_a_violation(tmp_path):
    sneaky = tmp_path / "policy.py"
    sneaky.write_text("from azure.mgmt.containerservice import ContainerServiceClient\n")
    assert azure_imports(sneaky) == {"azure.mgmt.containerservice"}
    assert not "azure.mgmt.containerservice".startswith(allowed("policy.py"))
