output "name" {
  description = "Deployed function name (<name>-<environment>), also its Cloud Run service name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "HTTPS URL of the function's Cloud Run service: API Gateway backend address and OIDC audience."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "timeout_seconds" {
  description = "Request timeout, reused as the API Gateway backend deadline."
  value       = var.timeout_seconds
}

output "service_account_email" {
  description = "Email of the function's own runtime service account."
  value       = google_service_account.this.email
}

output "source_object" {
  description = "gs:// path of the deployed source zip (changes with every code change)."
  value       = "gs://${var.source_bucket}/${google_storage_bucket_object.source.name}"
}
