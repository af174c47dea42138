output "database_id" {
  description = "Firestore database id (FIRESTORE_DATABASE)."
  value       = local.database
}

output "indexed_collections" {
  description = "Full names (prefix included) of the collections that have their list indexes."
  value       = [for collection in var.collections : "${var.collection_prefix}${collection}"]
}
