// The warden's rights in one subscription in scope: a custom role with exactly the ARM actions
// the app performs there (tests/infra check them against the requests the app makes), assigned
// to the warden's identity at the subscription. Deployed once per subscription in scope.
targetScope = 'subscription'

param principalId string
param environmentName string
@description('Add managedClusters/write, which the key rotation needs to PUT the cluster with the new key.')
param keyRotationEnabled bool

// Reads of clusters, pools and maintenance windows; the pool PUT that sets sshAccess; the
// node-image upgrade that makes it take effect; the operation-status reads of both; and, in
// each cluster's node resource group, the scale sets, their VMs and run-command on a VM to
// prove sshd's state on the nodes.
var enforcementActions = [
  'Microsoft.ContainerService/managedClusters/read'
  'Microsoft.ContainerService/managedClusters/agentPools/read'
  'Microsoft.ContainerService/managedClusters/agentPools/write'
  'Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action'
  'Microsoft.ContainerService/managedClusters/maintenanceConfigurations/read'
  'Microsoft.ContainerService/locations/operations/read'
  'Microsoft.Compute/virtualMachineScaleSets/read'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action'
  'Microsoft.Compute/locations/operations/read'
]
var keyRotationActions = [
  'Microsoft.ContainerService/managedClusters/write'
]

resource wardenRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'aks-ssh-warden')
  properties: {
    // Role names are unique in a tenant: one role per subscription and environment.
    roleName: 'AKS SSH Warden (${environmentName}, ${subscription().subscriptionId})'
    description: 'Keeps AKS node pools on the SSH access mode of the policy and checks sshd on the nodes.'
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(enforcementActions, keyRotationEnabled ? keyRotationActions : [])
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource wardenAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, wardenRole.id)
  properties: {
    roleDefinitionId: wardenRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
