// Azure SignalR Service in serverless mode (the app pushes through the REST API).
param name string
param location string

resource signalr 'Microsoft.SignalRService/signalR@2024-03-01' = {
  name: name
  location: location
  sku: { name: 'Free_F1', capacity: 1 }
  kind: 'SignalR'
  properties: {
    features: [ { flag: 'ServiceMode', value: 'Serverless' } ]
    cors: { allowedOrigins: [ '*' ] }
  }
}

output connectionString string = signalr.listKeys().primaryConnectionString
