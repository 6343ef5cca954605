// The storage account: the Functions host (AzureWebJobsStorage), the deployment package, the
// Durable Functions task hub on the Azure Storage backend, the warden's tables, and the blob
// container that receives dead-lettered Event Grid deliveries. Keys are off: every client
// signs in with Entra ID, and each identity gets data roles scoped to this account only.
param name string
param location string
param tags object
param deploymentContainerName string
param deadLetterContainerName string
param appPrincipalId string
param eventsPrincipalId string
@description('Durable Functions keeps its task hub in this account (queues, tables, blobs): false with the Durable Task Scheduler.')
param durableTaskHubInStorage bool
@description('Replication: zone-redundant by default, since the audit trail lives here.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

var roles = loadJsonContent('../roles.json')
// The app's data roles: blobs for the host and the package, tables for the warden's records;
// queues only where Durable Functions runs its task hub here.
var appRoles = concat([
  roles.storageBlobDataOwner
  roles.storageTableDataContributor
], durableTaskHubInStorage ? [
  roles.storageQueueDataContributor
] : [])

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app has no VNet integration, so it reaches storage over the public endpoint (Entra ID only)
  // checkov:skip=CKV_AZURE_59: public network access for the same reason; shared keys and anonymous blob access are off
  // checkov:skip=CKV_AZURE_206: replication is the skuName parameter, zone-redundant unless a region has no zones; checkov does not read parameter defaults
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource appDataRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in appRoles: {
  name: guid(account.id, appPrincipalId, role)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// Event Grid writes dead-lettered events into this one container, nothing else.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventsPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: eventsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
