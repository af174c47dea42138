output "document" {
  description = "The OpenAPI 2.0 document, as JSON."
  value       = jsonencode(local.document)

  precondition {
    condition     = length(local.missing) == 0
    error_message = "gateway_routes.yaml routes to function(s) that are not deployed (no functions/<name>/main.py): ${join(", ", sort(tolist(local.missing)))}."
  }

  precondition {
    condition     = length(distinct(local.operation_ids)) == length(local.operation_ids)
    error_message = "Two gateway paths produce the same operationId; rename one of them."
  }
}

output "routed_functions" {
  description = "Names of the functions the gateway sends requests to (routes plus fallback); only they get the gateway as invoker."
  value       = local.routed_functions
}

output "path_functions" {
  description = "Map of OpenAPI path => function name, for inspection and tests."
  value       = local.path_functions
}
