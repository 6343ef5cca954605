// ARM events of one subscription to the warden's Event Grid trigger. Deployed by
// infra/hooks/postdeploy.sh after `azd deploy` (the function must exist before a subscription
// can point at it), once per subscription in scope, at that subscription's scope: a
// subscription's system topic can only live in that subscription, and only one may exist, so
// the hook passes the existing topic when there is one (createTopic false).
targetScope = 'subscription'

param location string
@description('The resource group of the subscription\'s system topic: created along with the topic, else where it is.')
param resourceGroupName string
param topicName string
param createTopic bool
@description('The Event Grid trigger: <function app id>/functions/<function name>.')
param functionResourceId string
@description('The identity the topic dead-letters with; it may write the dead-letter container only.')
param eventsIdentityId string
param deadLetterStorageId string
param deadLetterContainer string
param tags object = {}

resource topicGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createTopic) {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'modules/arm-system-topic.bicep' = if (createTopic) {
  name: 'warden-arm-system-topic'
  scope: resourceGroup(resourceGroupName)
  params: {
    name: topicName
    identityId: eventsIdentityId
    tags: tags
  }
  dependsOn: [
    topicGroup
  ]
}

module eventSubscription 'modules/arm-event-subscription.bicep' = {
  name: 'warden-arm-event-subscription'
  scope: resourceGroup(resourceGroupName)
  params: {
    topicName: topicName
    functionResourceId: functionResourceId
    // A topic made elsewhere has no identity of ours to dead-letter with; the resync covers
    // undeliverable events all the same.
    deadLetterIdentityId: createTopic ? eventsIdentityId : ''
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainer: deadLetterContainer
  }
  dependsOn: [
    topic
  ]
}
