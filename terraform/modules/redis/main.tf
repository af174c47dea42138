# Memorystore for Redis shared by every function (rate limits, the answer cache, an answer's streamed text on
# its way to the events stream), and the Serverless VPC Access connector through which the functions reach its
# private address. Without it each instance keeps its own cache and limits.
#
# AUTH is on: the instance answers only clients that present its AUTH string, so the URL carries it
# (redis://:<auth>@host:port/0) and goes to the functions as a secret (modules/stack), never as plain env.
# Transit encryption stays off: it needs rediss:// with the instance's CA in every client, which the cache
# does not load; the traffic never leaves the VPC (connector to a peered private address).

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_redis_instance" "this" {
  #checkov:skip=CKV_GCP_97:Transit encryption needs rediss:// and the instance's CA in every client, which common/cache.py does not load; the instance has a private address reached only through the VPC connector, and AUTH is on.
  project        = var.project_id
  region         = var.region
  name           = "${var.name_prefix}-redis"
  display_name   = "ConvoInsight cache (${var.name_prefix})"
  tier           = var.tier
  memory_size_gb = var.memory_size_gb
  redis_version  = var.redis_version
  labels         = var.labels

  authorized_network      = "projects/${var.project_id}/global/networks/${var.network}"
  connect_mode            = var.connect_mode
  auth_enabled            = true
  transit_encryption_mode = "DISABLED"
}

# Cloud Functions reach private addresses only through a connector in their region; it takes a /28 of the
# network that nothing else uses.
resource "google_vpc_access_connector" "this" {
  project       = var.project_id
  region        = var.region
  name          = "${var.name_prefix}-vpc"
  network       = var.network
  ip_cidr_range = var.connector_cidr
  machine_type  = var.connector_machine_type
  min_instances = 2
  max_instances = var.connector_max_instances

  lifecycle {
    precondition {
      condition     = can(regex("^[a-z][-a-z0-9]{0,23}[a-z0-9]$", "${var.name_prefix}-vpc"))
      error_message = "Connector name ${var.name_prefix}-vpc must be at most 25 lower-case letters, digits or hyphens; shorten the environment name."
    }
  }
}
