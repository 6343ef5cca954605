// The Durable Task Scheduler backend: a scheduler, the warden's task hub, and the Durable Task
// Data Contributor role for the warden's identity on this scheduler only.
param name string
param taskHubName string
param location string
param tags object
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string
param appPrincipalId string

var roles = loadJsonContent('../roles.json')

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // An empty list denies every caller. Flex Consumption has no fixed outbound addresses, so
    // the scheduler accepts any network and relies on Entra ID (the role below) alone.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
    sku: {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource dataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, appPrincipalId, roles.durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
