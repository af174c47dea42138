# The Firestore (native mode) database and the composite indexes that listing records needs.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_firestore_database" "this" {
  count = var.create_database ? 1 : 0

  project                           = var.project_id
  name                              = var.database_id
  location_id                       = var.location_id
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.delete_protection ? "ABANDON" : "DELETE"
}

locals {
  database = var.create_database ? google_firestore_database.this[0].name : var.database_id
  # Stable keys (datasets:tenant_id-parent_digest-key, ...) so reordering either list recreates nothing.
  indexes = merge([
    for collection in var.collections : {
      for fields in var.record_indexes :
      "${collection}:${join("-", [for field in fields : field[1] == "DESCENDING" ? "${field[0]}.desc" : field[0]])}" => {
        collection = "${var.collection_prefix}${collection}"
        fields     = fields
      }
    }
  ]...)
}

resource "google_firestore_index" "records" {
  for_each = local.indexes

  project     = var.project_id
  database    = local.database
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}
