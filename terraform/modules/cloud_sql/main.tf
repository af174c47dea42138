# Optional Cloud SQL for PostgreSQL as the metadata store (METADATA_BACKEND=sql) instead of Firestore.
#
# The functions connect through the Cloud SQL Python connector (common/metadata/sql_engine.py), which dials
# the instance's public address over mTLS after an authorised SQL Admin API call: the instance lists no
# authorised networks, so only identities holding roles/cloudsql.client on it (granted per function in
# modules/function) get in, and no VPC connector is needed. The connector uses the public address by
# default, which is why the instance has one.
#
# The user's password is generated here and leaves only inside database_url, which modules/stack stores
# as a Secret Manager secret (DATABASE_URL): the code reads the password from that URL alone.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV2_GCP_13:log_duration writes a line for every statement (pipeline stages run many); slow ones show in Query Insights instead.
  #checkov:skip=CKV_GCP_79:POSTGRES_17 is the newest version this module was written against (supported into 2029); database_version takes a newer one.
  #checkov:skip=CKV_GCP_60:The Cloud SQL connector the code uses dials the public address; no authorised networks are listed and client certificates are required, so only the connector (roles/cloudsql.client) gets in.
  project             = var.project_id
  region              = var.region
  name                = "${var.name_prefix}-pg"
  database_version    = var.database_version
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.tier
    availability_type           = var.availability_type
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled = true
      # The connector presents an ephemeral client certificate; anything else is refused.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }

    insights_config {
      query_insights_enabled = true
    }

    # Connections, locks, temp files and schema changes are logged for audits and for finding a slow stage;
    # other statements only when they fail (Postgres's default level, stated): they carry tenants' values.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }
}

resource "google_sql_database" "this" {
  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = var.database_name
}

# Letters and digits only: the password sits inside a URL (DATABASE_URL) unescaped.
resource "random_password" "user" {
  length  = 32
  special = false
}

resource "google_sql_user" "this" {
  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = var.user_name
  password = random_password.user.result
}
