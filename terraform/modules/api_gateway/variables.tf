variable "project_id" {
  description = "Google Cloud project of the gateway."
  type        = string
}

variable "region" {
  description = "Region of the gateway (API Gateway is available in a subset of regions, e.g. us-central1, europe-west1, asia-northeast1)."
  type        = string
}

variable "environment" {
  description = "Deployment name (dev, prod); suffixes the gateway's service account id."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the API, config and gateway ids (e.g. convoinsight-dev)."
  type        = string
}

variable "firebase_project_id" {
  description = "Firebase project whose ID tokens are accepted (JWT issuer and audience); usually the same as project_id."
  type        = string
}

variable "routes_file" {
  description = "Path of common/gateway_routes.yaml; the OpenAPI document is generated from it."
  type        = string
}

variable "legacy_paths" {
  description = "Legacy API paths sent to the routes file's fallback function; null keeps the list in modules/api_gateway/openapi."
  type        = list(string)
  default     = null
}

variable "public_paths" {
  description = "Paths served without a Firebase ID token; null keeps the default (health endpoints and /)."
  type        = list(string)
  default     = null
}

variable "backends" {
  description = "Deployed functions by name: {url, deadline}. Every function named in the routes file (and its fallback) must be present."
  type = map(object({
    url      = string
    deadline = number
  }))
}

variable "labels" {
  description = "Labels added to the API and the gateway."
  type        = map(string)
  default     = {}
}
