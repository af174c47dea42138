output "hostname" {
  description = "Public host name of the gateway (https://<hostname>/api/v1/...)."
  value       = google_api_gateway_gateway.this.default_hostname
}

output "service_account_member" {
  description = "IAM member string of the gateway's identity, for the routed functions' invoker bindings."
  value       = "serviceAccount:${google_service_account.gateway.email}"
}

output "routed_functions" {
  description = "Functions the gateway sends requests to; read from the routes file, so known at plan time."
  value       = module.openapi.routed_functions
}

output "openapi_document" {
  description = "The generated OpenAPI 2.0 document (JSON)."
  value       = module.openapi.document
}
