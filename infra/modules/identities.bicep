// The two user-assigned identities: the warden's own (ARM, tables, Key Vault, the Durable
// backend) and the one Event Grid uses to dead-letter undeliverable events, so that neither
// holds the other's rights.
param appIdentityName string
param eventsIdentityName string
param location string
param tags object

resource app 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource events 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: eventsIdentityName
  location: location
  tags: tags
}

output appId string = app.id
output appClientId string = app.properties.clientId
output appPrincipalId string = app.properties.principalId
output eventsId string = events.id
output eventsPrincipalId string = events.properties.principalId
