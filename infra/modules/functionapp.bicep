// Linux consumption Function App (Python 3.11) with a system-assigned identity.
param name string
param location string
@secure()
param storageConnectionString string
@secure()
param signalrConnectionString string
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: 'plan-${name}'
  location: location
  sku: { name: 'Y1', tier: 'Dynamic' }
  kind: 'functionapp'
  properties: { reserved: true }
}

var baseSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'python'
  AzureWebJobsFeatureFlags: 'EnableWorkerIndexing'
  AzureWebJobsStorage: storageConnectionString
  SIGNALR_CONNECTION_STRING: signalrConnectionString
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: name
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [for item in items(union(baseSettings, appSettings)): { name: item.key, value: string(item.value) }]
    }
  }
}

output hostName string = site.properties.defaultHostName
output principalId string = site.identity.principalId
