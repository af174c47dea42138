variable "project_id" {
  description = "Google Cloud project of the instance and the connector."
  type        = string
}

variable "region" {
  description = "Region of the instance and the connector: the functions' region (a connector serves its own region only)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the resource names (convoinsight-<environment>); the connector's name (<prefix>-vpc) may be 25 characters at most."
  type        = string
}

variable "tier" {
  description = "BASIC (one node; a restart empties the cache and resets rate limits) or STANDARD_HA (a replica in another zone with automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  description = "Instance memory in GiB (1-300). Cached answers expire, so 1 GiB holds many; raise it if evictions show."
  type        = number
  default     = 1

  validation {
    condition     = var.memory_size_gb >= 1 && var.memory_size_gb <= 300 && floor(var.memory_size_gb) == var.memory_size_gb
    error_message = "memory_size_gb must be a whole number of GiB between 1 and 300."
  }
}

variable "redis_version" {
  description = "Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"
}

variable "network" {
  description = "Name of the VPC network the instance is reachable on and the connector joins (e.g. default)."
  type        = string
  default     = "default"
}

variable "connect_mode" {
  description = "DIRECT_PEERING (needs nothing else) or PRIVATE_SERVICE_ACCESS (needs a private services access range on the network, made outside this module)."
  type        = string
  default     = "DIRECT_PEERING"

  validation {
    condition     = contains(["DIRECT_PEERING", "PRIVATE_SERVICE_ACCESS"], var.connect_mode)
    error_message = "connect_mode must be DIRECT_PEERING or PRIVATE_SERVICE_ACCESS."
  }
}

variable "connector_cidr" {
  description = "An unused /28 of the network for the VPC connector (e.g. 10.8.0.0/28); must not overlap the instance's range or any subnet."
  type        = string
  default     = "10.8.0.0/28"

  validation {
    condition     = can(cidrhost(var.connector_cidr, 0)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr must be a /28 range, e.g. 10.8.0.0/28."
  }
}

variable "connector_machine_type" {
  description = "Machine type of the connector's instances (f1-micro, e2-micro or e2-standard-4): their throughput caps the functions' traffic to Redis."
  type        = string
  default     = "e2-micro"
}

variable "connector_max_instances" {
  description = "Most connector instances (3-10); the connector scales out under load and never back in."
  type        = number
  default     = 3
}

variable "labels" {
  description = "Labels added to the instance."
  type        = map(string)
  default     = {}
}
