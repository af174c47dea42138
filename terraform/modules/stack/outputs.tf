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

output "cache" {
  description = "Where every function's cache and rate limits live: memory (per instance), or the Redis host:port (modules/redis) or the operator's redis_url."
  value       = var.redis_enabled ? module.redis[0].host : (var.redis_url == "" ? "memory" : "redis_url")

  precondition {
    condition     = var.redis_url == "" || var.vpc_connector != null
    error_message = "redis_url needs vpc_connector: Memorystore has a private address only, which the functions reach through a Serverless VPC Access connector (or set redis_enabled and let modules/redis make both)."
  }
  precondition {
    condition     = !var.redis_enabled || (var.redis_url == "" && var.vpc_connector == null)
    error_message = "redis_enabled provisions its own Redis and VPC connector: leave redis_url and vpc_connector unset."
  }
}

output "cloud_sql_instance" {
  description = "CLOUD_SQL_INSTANCE (project:region:instance) of the metadata database when cloud_sql_enabled; null while the metadata lives in Firestore."
  value       = one(module.cloud_sql[*].connection_name)
}
