// The warden's subscription to a subscription's ARM events: successful AKS cluster and pool
// writes, and the actions after which a pool needs another look (shared/core/events.py classifies
// the same operations). Events are hints: the function re-reads ARM, and the hourly resync
// re-plans the fleet, so an event dropped after the last retry or dead-lettered loses no work.
param topicName string
param functionResourceId string
@description('Empty: no dead-lettering (a topic without the warden\'s identity).')
param deadLetterIdentityId string
param deadLetterStorageId string
param deadLetterContainer string

var eventTypes = [
  'Microsoft.Resources.ResourceWriteSuccess'
  'Microsoft.Resources.ResourceActionSuccess'
]
var aksOperations = [
  'Microsoft.ContainerService/managedClusters/write'
  'Microsoft.ContainerService/managedClusters/agentPools/write'
  'Microsoft.ContainerService/managedClusters/start/action'
  'Microsoft.ContainerService/managedClusters/abort/action'
  'Microsoft.ContainerService/managedClusters/agentPools/abort/action'
  'Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action'
]
var deadLetter = {
  identity: {
    type: 'UserAssigned'
    userAssignedIdentity: deadLetterIdentityId
  }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: deadLetterStorageId
      blobContainerName: deadLetterContainer
    }
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource warden 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'aks-ssh-warden'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: functionResourceId
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: eventTypes
      // StringIn compares case-insensitively: ARM's casing of operation names varies.
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: aksOperations
        }
      ]
    }
    // Event Grid's maximum: retries for 24 hours, then dead-letters (or drops).
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: empty(deadLetterIdentityId) ? null : deadLetter
  }
}
