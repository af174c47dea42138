variable "project_id" {
  description = "Google Cloud project of the secrets."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the secret ids (e.g. convoinsight-dev)."
  type        = string
}

variable "secrets" {
  description = "Secrets to create, by key: the environment variable a function reads it into, what it holds, and how its first value is made: generate = \"fernet_key\" or \"hmac_secret\" (made here), or null (taken from var.values)."
  type = map(object({
    env_var     = string
    description = string
    generate    = optional(string)
  }))
  default = {
    fernet_keys = {
      env_var     = "ENCRYPTION_KEYS"
      description = "Comma-separated Fernet keys, newest first (MultiFernet): encrypt request API keys while a question runs, stored provider keys and database passwords; rotate by adding a version with a new key in front."
      generate    = "fernet_key"
    }
    url_signing_secret = {
      env_var     = "URL_SIGNING_SECRET"
      description = "Comma-separated HMAC secrets (32+ characters), newest first: sign and verify the API's own links (chart content, result and upload URLs); rotate by adding a version with a new secret in front."
      generate    = "hmac_secret"
    }
    default_llm_api_key = {
      env_var     = "LLM_DEFAULT_API_KEYS"
      description = "The server's own LLM provider keys as provider=key pairs separated by commas, used when neither the request nor the user supplies one."
    }
  }

  validation {
    condition     = alltrue([for secret in values(var.secrets) : contains(["fernet_key", "hmac_secret", "none"], coalesce(secret.generate, "none"))])
    error_message = "generate must be fernet_key, hmac_secret or null."
  }
}

variable "values" {
  description = "First value of every secret that is not generated, by key (e.g. default_llm_api_key). Stored in the Terraform state, like the generated ones."
  type        = map(string)
  sensitive   = true
  default     = {}
}

variable "labels" {
  description = "Labels added to every secret."
  type        = map(string)
  default     = {}
}
