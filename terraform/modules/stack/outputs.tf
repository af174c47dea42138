output "gateway_url" {
  description = "Base URL of the API (https://<gateway host>); the frontend's API base."
  value       = "https://${module.api_gateway.hostname}"
}

output "data_bucket" {
  description = "Data bucket (GCS_BUCKET)."
  value       = module.storage.data_bucket_name
}

output "functions" {
  description = "Deployed functions: name => Cloud Run URL (reachable only by their invokers)."
  value       = { for name, function in module.functions : name => function.uri }

  precondition {
    condition     = length(setsubtract(["agents", "cleanup"], local.function_names)) == 0
    error_message = "functions/agents/main.py and functions/cleanup/main.py must exist: the pipeline queue targets agents and the scheduler calls cleanup."
  }
}

output "functions_without_access_profile" {
  description = "Functions deployed with no data access (no profile in modules/function_access)."
  value       = module.function_access.unprofiled_functions
}

output "secrets" {
  description = "Secret ids, each created with its first version; rotate with `gcloud secrets versions add <id> --data-file=-`."
  value       = { for key, secret in module.secrets.secrets : key => secret.secret_id }
}
