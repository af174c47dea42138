output "vpc_connector" {
  description = "The connector (projects/<p>/locations/<r>/connectors/<name>) every function egresses through to reach the instance."
  value       = google_vpc_access_connector.this.id
}

output "redis_url" {
  description = "REDIS_URL of the functions: redis://:<AUTH string>@<host>:<port>/0. Holds the AUTH string: mount it as a secret."
  value       = "redis://:${google_redis_instance.this.auth_string}@${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
  sensitive   = true
}

output "host" {
  description = "Private address and port of the instance (host:port)."
  value       = "${google_redis_instance.this.host}:${google_redis_instance.this.port}"
}
