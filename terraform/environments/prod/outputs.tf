# The stack's outputs, unchanged (descriptions in modules/stack/outputs.tf).

output "gateway_url" {
  description = "Base URL of the API; the frontend's API base."
  value       = module.stack.gateway_url
}

output "data_bucket" {
  description = "Data bucket (GCS_BUCKET)."
  value       = module.stack.data_bucket
}

output "functions" {
  description = "Deployed functions: name => Cloud Run URL."
  value       = module.stack.functions
}

output "functions_without_access_profile" {
  description = "Functions deployed with no data access."
  value       = module.stack.functions_without_access_profile
}

output "secrets" {
  description = "Secret ids (each created with its first version); rotate with `gcloud secrets versions add`."
  value       = module.stack.secrets
}
