// One customer's deployment: Storage, SignalR Service (serverless), a Python Function App with a
// managed identity. Outputs the app's host name for the widget snippet and the Teams package.
targetScope = 'resourceGroup'

@description('Short name used to derive resource names.')
param name string = 'supportdesk'
param location string = resourceGroup().location
@description('Marketplace plan id: start, growth or professional.')
param planId string = 'start'
@secure()
@description('Initial admin key for the dashboard.')
param adminKey string
param marketplaceSubscriptionId string = ''
param aadAppClientId string = ''
param aadAppTenantId string = subscription().tenantId
param allowedOrigins string = ''
@description('Azure OpenAI for the bot; left empty, the bot answers offline from the knowledge text.')
param azureOpenAiEndpoint string = ''
@secure()
param azureOpenAiApiKey string = ''
param azureOpenAiDeployment string = ''
@description('FAQ / knowledge the bot answers from.')
param knowledgeText string = ''

var suffix = uniqueString(resourceGroup().id, name)

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: { name: 'st${take(suffix, 20)}', location: location }
}

module signalr 'modules/signalr.bicep' = {
  name: 'signalr'
  params: { name: 'sigr-${suffix}', location: location }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: 'fa-${name}-${suffix}'
    location: location
    storageConnectionString: storage.outputs.connectionString
    signalrConnectionString: signalr.outputs.connectionString
    appSettings: {
      PLAN_ID: planId
      ADMIN_KEY: adminKey
      MARKETPLACE_SUBSCRIPTION_ID: marketplaceSubscriptionId
      AAD_APP_CLIENT_ID: aadAppClientId
      AAD_APP_TENANT_ID: aadAppTenantId
      ALLOWED_ORIGINS: allowedOrigins
      DEPLOYMENT_ID: 'sd-${suffix}'
      AZURE_OPENAI_ENDPOINT: azureOpenAiEndpoint
      AZURE_OPENAI_API_KEY: azureOpenAiApiKey
      AZURE_OPENAI_DEPLOYMENT: azureOpenAiDeployment
      KNOWLEDGE_TEXT: knowledgeText
    }
  }
}

output hostName string = app.outputs.hostName
