variable "project_id" {
  description = "Google Cloud project of the instance."
  type        = string
}

variable "region" {
  description = "Region of the instance (the functions' region keeps connections short)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the instance name (<prefix>-pg). A deleted instance's name cannot be reused for about a week."
  type        = string
}

variable "database_version" {
  description = "Cloud SQL PostgreSQL version."
  type        = string
  default     = "POSTGRES_17"

  validation {
    condition     = startswith(var.database_version, "POSTGRES_")
    error_message = "database_version must be a PostgreSQL version (POSTGRES_16, ...): the code speaks Postgres through pg8000."
  }
}

variable "tier" {
  description = "Machine tier, e.g. db-custom-1-3840 (1 vCPU, 3.75 GB). Every function instance holds its own connection pool: size max_connections (set by the tier) to the functions' max_instances."
  type        = string
  default     = "db-custom-1-3840"
}

variable "availability_type" {
  description = "ZONAL, or REGIONAL for a standby in another zone with automatic failover."
  type        = string
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.availability_type)
    error_message = "availability_type must be ZONAL or REGIONAL."
  }
}

variable "deletion_protection" {
  description = "Refuse deletion by terraform destroy and by the API; turn off, apply, then destroy to remove it on purpose."
  type        = bool
  default     = true
}

variable "database_name" {
  description = "Name of the metadata database."
  type        = string
  default     = "convoinsight"
}

variable "user_name" {
  description = "Database user the functions log in as (built-in user with a generated password)."
  type        = string
  default     = "convoinsight"
}

variable "labels" {
  description = "Labels added to the instance."
  type        = map(string)
  default     = {}
}
