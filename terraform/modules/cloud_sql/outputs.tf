output "instance_name" {
  description = "Instance name: what roles/cloudsql.client is conditioned on."
  value       = google_sql_database_instance.this.name
}

output "connection_name" {
  description = "project:region:instance (CLOUD_SQL_INSTANCE)."
  value       = google_sql_database_instance.this.connection_name
}

output "database_url" {
  description = "DATABASE_URL: postgresql+pg8000://<user>:<password>@/<database>. Holds the password: mount it as a secret."
  value       = "postgresql+pg8000://${google_sql_user.this.name}:${random_password.user.result}@/${google_sql_database.this.name}"
  sensitive   = true
}
