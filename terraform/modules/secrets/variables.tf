variable "project_id" {
  description = "Google Cloud project of the secrets."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the secret ids (e.g. convoinsight-dev)."
  type        = string
}

variable "secrets" {
  description = "Secrets to create, by key: the environment variable a function reads it into and what it holds. Values are added out of band (gcloud secrets versions add), never through Terraform state."
  type = map(object({
    env_var     = string
    description = string
  }))
  default = {
    fernet_keys = {
      env_var     = "ENCRYPTION_KEYS"
      description = "Comma-separated Fernet keys, newest first (MultiFernet): encrypt request API keys while a question runs, stored provider keys and database passwords; rotate by adding a version with a new key in front."
    }
    default_llm_api_key = {
      env_var     = "LLM_DEFAULT_API_KEYS"
      description = "The server's own LLM provider keys as provider=key pairs separated by commas, used when neither the request nor the user supplies one."
    }
  }
}

variable "labels" {
  description = "Labels added to every secret."
  type        = map(string)
  default     = {}
}
