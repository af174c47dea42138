output "grants" {
  description = "Access profile of every deployed function (all fields present; none granted when it has no profile)."
  value       = { for name in var.function_names : name => merge(local.no_access, lookup(local.profiles, name, {})) }
}

output "unprofiled_functions" {
  description = "Deployed functions that have no profile here and therefore no data access; add one if that is wrong."
  value       = setsubtract(var.function_names, keys(local.profiles))
}
