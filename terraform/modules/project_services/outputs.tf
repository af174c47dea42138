output "services" {
  description = "The enabled APIs (depend on this output, or on the module, to order resources after enablement)."
  value       = [for service in google_project_service.this : service.service]
}
