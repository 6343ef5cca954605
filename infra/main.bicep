// AKS SSH Warden for azd: `azd up` provisions this, deploys the app, then the postdeploy hook
// wires Event Grid (infra/eventgrid.bicep) to the deployed function.
//
// Scope: subscription. The warden needs rights in every subscription it watches, and a role
// assignment at a subscription can only be deployed at that subscription's scope; so this
// template creates its resource group itself and deploys `modules/warden-role.bicep` once per
// subscription in scope (`scope: subscription(id)`). Everything else lives in the resource group.
//
// The modules are local rather than Azure Verified Modules from the registry: checkov and
// tests/infra read every property of every resource, which they cannot do inside a registry module.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources (a region with Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('WARDEN_SUBSCRIPTIONS: comma-separated ids of the subscriptions to keep compliant; empty means this one.')
param wardenSubscriptions string = ''

@description('WARDEN_MODE: audit records what would change and writes nothing; enforce writes.')
@allowed([
  'audit'
  'enforce'
])
param wardenMode string = 'audit'

// azd substitutes parameters into main.parameters.json as raw text, where the quotes of a JSON
// policy would break the file: the policy travels base64-encoded.
@description('WARDEN_POLICY, base64-encoded JSON text; empty means every pool Disabled.')
param wardenPolicyBase64 string = ''

@description('WARDEN_POLL_SECONDS: first wait between polls of a long-running ARM operation.')
@minValue(1)
@maxValue(600)
param pollSeconds int = 30

@description('WARDEN_VERIFY_SCHEDULE (NCRONTAB); empty means every 6 hours.')
param verifySchedule string = ''

@description('WARDEN_ROTATE_SCHEDULE (NCRONTAB); empty means monthly.')
param rotateSchedule string = ''

@description('WARDEN_RESYNC_SCHEDULE (NCRONTAB); empty means hourly.')
param resyncSchedule string = ''

@description('WARDEN_VERIFY_CONCURRENCY: run-commands in flight per subscription.')
@minValue(1)
@maxValue(100)
param verifyConcurrency int = 10

@description('WARDEN_MAX_EXEMPTION: how long a break-glass exemption may last at most (90m, 24h, 1d12h, PT24H); empty means 24 hours.')
param maxExemption string = ''

@description('WARDEN_MAX_REIMAGES: node-image upgrades (reimages) in flight at once across the fleet.')
@minValue(1)
@maxValue(50)
param maxReimages int = 2

@description('WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION: reimages in flight at once per subscription.')
@minValue(1)
@maxValue(50)
param maxReimagesPerSubscription int = 1

@description('Node SSH key rotation: a Key Vault for the generated keys, and managedClusters/write in the warden role.')
param keyRotationEnabled bool = false

@description('Publish outcome events (drift, remediated, failed, key rotated) to an Event Grid topic made for them.')
param publishOutcomes bool = false

@description('Durable Functions backend: Azure Storage (this deployment\'s account) or the Durable Task Scheduler.')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@allowed([
  'Consumption'
  'Dedicated'
])
param schedulerSku string = 'Consumption'

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_ZRS'

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var subscriptionList = toLower(replace(wardenSubscriptions, ' ', ''))
var scopeSubscriptions = empty(subscriptionList) ? [
  subscription().subscriptionId
] : split(subscriptionList, ',')
var useScheduler = (durableBackend == 'DurableTaskScheduler')
var taskHubName = 'WardenHub'
// The Event Grid trigger's function name (shared/triggers/event_grid.py EVENT_FUNCTION).
var eventFunctionName = 'on_arm_event'
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    appIdentityName: '${abbrs.managedIdentity}warden-${resourceToken}'
    eventsIdentityName: '${abbrs.managedIdentity}events-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageAccount}${resourceToken}'
    location: location
    tags: tags
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    appPrincipalId: identities.outputs.appPrincipalId
    eventsPrincipalId: identities.outputs.eventsPrincipalId
    durableTaskHubInStorage: (!useScheduler)
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.logAnalyticsWorkspace}${resourceToken}'
    appInsightsName: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

module keyVault 'modules/keyvault.bicep' = if (keyRotationEnabled) {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVault}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

module scheduler 'modules/durable-task-scheduler.bicep' = if (useScheduler) {
  name: 'durable-task-scheduler'
  scope: rg
  params: {
    name: '${abbrs.durableTaskScheduler}${resourceToken}'
    taskHubName: taskHubName
    location: location
    tags: tags
    skuName: schedulerSku
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

module outcomes 'modules/outcomes-topic.bicep' = if (publishOutcomes) {
  name: 'outcomes-topic'
  scope: rg
  params: {
    name: '${abbrs.eventGridTopic}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

module wardenRoles 'modules/warden-role.bicep' = [for subscriptionId in scopeSubscriptions: {
  // Deployment names are unique per scope and at most 64 characters.
  name: 'warden-role-${take(environmentName, 15)}-${subscriptionId}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identities.outputs.appPrincipalId
    environmentName: environmentName
    keyRotationEnabled: keyRotationEnabled
  }
}]

// Every setting the app reads (shared/config/), and the identity-based connections of the
// Functions host. Empty optional values mean "off", as in the app.
var clientId = identities.outputs.appClientId
var appSettings = [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: clientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.outputs.blobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.outputs.queueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.outputs.tableEndpoint
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: monitoring.outputs.connectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${clientId};Authorization=AAD'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: clientId
  }
  {
    // doctor names the warden's role in its fixes: 'AKS SSH Warden (<environment>, <subscription>)'
    name: 'AZURE_ENV_NAME'
    value: environmentName
  }
  {
    name: 'AZURE_RESOURCE_MANAGER_ENDPOINT'
    value: environment().resourceManager
  }
  {
    name: 'WARDEN_SUBSCRIPTIONS'
    value: join(scopeSubscriptions, ',')
  }
  {
    name: 'WARDEN_MODE'
    value: wardenMode
  }
  {
    name: 'WARDEN_POLICY'
    value: empty(wardenPolicyBase64) ? '' : base64ToString(wardenPolicyBase64)
  }
  {
    name: 'WARDEN_TABLES'
    value: storage.outputs.tableEndpoint
  }
  {
    name: 'WARDEN_POLL_SECONDS'
    value: string(pollSeconds)
  }
  {
    name: 'WARDEN_VERIFY_SCHEDULE'
    value: empty(verifySchedule) ? '0 0 */6 * * *' : verifySchedule
  }
  {
    name: 'WARDEN_ROTATE_SCHEDULE'
    value: empty(rotateSchedule) ? '0 0 3 1 * *' : rotateSchedule
  }
  {
    name: 'WARDEN_RESYNC_SCHEDULE'
    value: empty(resyncSchedule) ? '0 0 * * * *' : resyncSchedule
  }
  {
    name: 'WARDEN_VERIFY_CONCURRENCY'
    value: string(verifyConcurrency)
  }
  {
    name: 'WARDEN_MAX_EXEMPTION'
    value: maxExemption
  }
  {
    name: 'WARDEN_MAX_REIMAGES'
    value: string(maxReimages)
  }
  {
    name: 'WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION'
    value: string(maxReimagesPerSubscription)
  }
  {
    name: 'WARDEN_KEYVAULT_URL'
    value: keyRotationEnabled ? keyVault.outputs.uri : ''
  }
  {
    name: 'WARDEN_EVENTS_ENDPOINT'
    value: publishOutcomes ? outcomes.outputs.endpoint : ''
  }
]
// host.json cannot change per deployment; these app settings override its durableTask section
// (AzureFunctionsJobHost__<path>) to run the same code on the Durable Task Scheduler.
var schedulerSettings = [
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type'
    value: 'azureManaged'
  }
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName'
    value: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
  }
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__hubName'
    value: taskHubName
  }
  {
    name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    value: useScheduler ? 'Endpoint=${scheduler.outputs.endpoint};Authentication=ManagedIdentity;ClientID=${clientId}' : ''
  }
  {
    name: 'TASKHUB_NAME'
    value: taskHubName
  }
]

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    planName: '${abbrs.appServicePlan}${resourceToken}'
    appName: '${abbrs.functionApp}${resourceToken}'
    location: location
    tags: union(tags, {
      'azd-service-name': 'warden'
    })
    identityId: identities.outputs.appId
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${deploymentContainerName}'
    appSettings: concat(appSettings, useScheduler ? schedulerSettings : [])
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
// Read by infra/hooks/postdeploy.sh to wire each subscription's ARM events to the function.
output EVENTGRID_SUBSCRIPTIONS string = join(scopeSubscriptions, ',')
output EVENTGRID_FUNCTION_ID string = '${functionApp.outputs.id}/functions/${eventFunctionName}'
output EVENTGRID_IDENTITY_ID string = identities.outputs.eventsId
output EVENTGRID_DEADLETTER_STORAGE_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
// Where a subscription without an ARM system topic gets one (a system topic lives in its source's subscription).
output EVENTGRID_RESOURCE_GROUP string = '${abbrs.resourceGroup}${environmentName}-arm-events'
output EVENTGRID_TOPIC_NAME string = '${abbrs.eventGridSystemTopic}${environmentName}-arm'
