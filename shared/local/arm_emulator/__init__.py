"""A local Azure Resource Manager for the AKS and Compute calls the warden makes. Never deployed.

`ArmEmulator(fleet)` serves, on http://127.0.0.1:PORT, the ARM REST API that the real
azure-mgmt-containerservice and azure-mgmt-compute clients call: managed clusters, agent pools,
maintenance configurations, node-image upgrades, long-running operations, node VMSS and VMSS VM
run-command. It behaves like ARM where the warden depends on it: api-version required (any value),
bearer token required, paths case-insensitive, ARM's error bodies, full-PUT semantics, one AKS
operation per cluster (409 OperationNotAllowed), stopped clusters refuse writes, PUT agentPool
throttled at a bucket of 20 refilled 1/min (429 Throttled + Retry-After), one run-command per VM
(409 Conflict), run-command only on running VMs and with the command of the VM's OS.
`latency_seconds` (also `PUT /_emulator/latency`) makes every ARM request wait that long before it
is handled, as across a network; requests wait side by side, one server thread each.
`run_command_seconds` (also `--run-command-seconds`, `PUT /_emulator/run-command-seconds`) keeps
each run-command InProgress at least that long; `run_command_log` records every run-command.
Lists come in one page, as AKS answers them; `aks.page_size` pages the cluster and pool lists as
ARM pages (`nextLink`: absolute, with api-version and `$skiptoken`).

Node sshd changes only when AKS reimages: when a node-image upgrade completes (Disabled ->
inactive/disabled, EntraId or LocalUser -> active/enabled; EntraId -> `PubkeyAuthentication no`),
or, for pools on Kubernetes 1.37 or newer, when the PUT that changed `sshAccess` completes. New
nodes (create, scale up) boot with the pool's current mode. What a node's shell answers depends on
its OS (`osType`, `osSKU`: Ubuntu `ssh.service` with the `sshd` alias, Azure Linux `sshd.service`,
Windows the `sshd` service): see `node_shell`. Tests change nodes behind AKS's back with
`set_node_sshd`, `set_node_power_state` and `override_node_output` (also `POST /_emulator/node`).

Fleet document (JSON; `shared/local/demo_fleet.json` is the demo's):

    {"clusters": [
      {"managedCluster": {ARM managed-cluster body: "id" and "name" required; its
                          properties.agentPoolProfiles are ignored and rendered from agentPools},
       "agentPools": [
         {"agentPool": {ARM agent-pool body: "name" required, "id"/"type" filled if absent},
          "nodes": [{"instanceId": "0", "active": "active"|"inactive", "enabled": "enabled"|"disabled",
                     "sshAccess": mode it was imaged with, "pubkey": "yes"|"no", "powerState": "running"|...}],
          "latestNodeImageVersion": "..."}],
       "maintenanceConfigurations": [{ARM maintenance-configuration body, "name" required}]}]}

`nodes` defaults to `properties.count` nodes in the state the pool's mode gives; a missing field of a
node too (a node whose sshd state does not fit the pool's mode was imaged before the mode changed:
with LocalUser if it runs sshd under a Disabled pool, else with Disabled). `latestNodeImageVersion` (optional): a node-image upgrade of a pool already on it changes
nothing on the nodes; without it every upgrade finds a newer image (the trailing number + 1).
Node VMSS live in the cluster's `nodeResourceGroup`, named `aks-{pool}-{8 digits}-vmss` (Windows:
`aks{pool}`) and tagged `aks-managed-poolName`; pools of type `VirtualMachines` have no VMSS.

Long-running operations stay `InProgress` for `lro_polls` status reads, then end `Succeeded` (or
as `faults.fail_operation` says). A VM stays busy with a run-command until its result is polled.
"""

from shared.local.arm_emulator.emulator import ArmEmulator, RecordedRequest
from shared.local.arm_emulator.errors import ArmHttpError
from shared.local.arm_emulator.faults import Faults

__all__ = ["ArmEmulator", "ArmHttpError", "Faults", "RecordedRequest"]
