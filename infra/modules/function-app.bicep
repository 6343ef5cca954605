// The warden itself: a Linux Function App on the Flex Consumption plan, Python 3.11, running
// as its user-assigned identity. The package is deployed to a blob container that the app
// reads with that identity; the app settings come whole from main.bicep (name/value pairs).
param planName string
param appName string
param location string
param tags object
param identityId string
param deploymentContainerUrl string
@description('Every app setting, as name/value pairs; AzureWebJobsStorage and the Durable backend are identity-based.')
param appSettings array
param maximumInstanceCount int
param instanceMemoryMB int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
  // checkov:skip=CKV_AZURE_225: a zone outage only delays enforcement: Event Grid retries for 24 h and the resync re-plans the fleet; no state lives on the instances
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: client certificates do not fit the callers: Event Grid delivers with the function's system key, people call the HTTP API with function keys
  // checkov:skip=CKV_AZURE_212: scale to zero is intended: Event Grid retries deliveries and the resync timer catches up after a cold start
  // checkov:skip=CKV_AZURE_213: Flex Consumption manages its instances per function; an App Service health-check path has no instance pool to act on
  // checkov:skip=CKV_AZURE_222: Event Grid and the HTTP API reach the app over its public endpoint (no VNet integration); every function requires a key
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing passwords: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
