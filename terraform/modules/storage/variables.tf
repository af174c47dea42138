variable "project_id" {
  description = "Google Cloud project that owns the buckets."
  type        = string
}

variable "location" {
  description = "Bucket location; the functions' region keeps reads local and egress free."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the bucket names (e.g. convoinsight-dev); the project id is prepended for global uniqueness."
  type        = string
}

variable "cors_origins" {
  description = "Browser origins allowed to GET objects directly (signed chart and dataset URLs); the same list as CORS_ORIGINS."
  type        = list(string)
}

variable "tmp_prefix" {
  description = "Object prefix for short-lived objects (exports, staging); everything under it is deleted one day after creation."
  type        = string
  default     = "tmp/"
}

variable "source_zip_retention_days" {
  description = "Days a function source zip is kept in the source bucket (a function needs it only while it is built)."
  type        = number
  default     = 30
}

variable "versioning" {
  description = "Keep noncurrent object versions in the data bucket (protects against overwrites; costs storage)."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets. Keep false outside throw-away environments."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels added to both buckets."
  type        = map(string)
  default     = {}
}
