// An Event Grid topic for the warden's outcome events (drift, remediated, failed, key rotated),
// keyless: only Entra ID senders, and the warden's identity is the only one.
param name string
param location string
param tags object
param appPrincipalId string

var roles = loadJsonContent('../roles.json')

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193: the Flex Consumption app has no VNet integration and publishes over the public endpoint; local auth is off, Entra ID only
  // checkov:skip=CKV_AZURE_191: the topic needs no identity of its own: subscribers pull or receive with their own rights
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, roles.eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = topic.properties.endpoint
