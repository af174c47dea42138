# The OpenAPI 2.0 document API Gateway serves, generated from common/gateway_routes.yaml.
# Pure computation (no provider), so tests/unit/terraform/test_tf_gateway.py renders it offline and checks that
# every path reaches the function common/gateway.py would pick.

locals {
  routes_doc = yamldecode(file(var.routes_file))
  fallback   = local.routes_doc.fallback

  # A prefix route becomes two paths: the prefix itself, and the prefix with an ESPv2 double-wildcard
  # segment ({rest=**} matches one or more further segments but not the bare prefix).
  route_entries = [
    for route in local.routes_doc.routes : (
      lookup(route, "exact", null) != null
      ? tomap({ (route.exact) = route.function })
      : tomap({
        (route.prefix)                               = route.function
        "${trimsuffix(route.prefix, "/")}/{rest=**}" = route.function
      })
    )
  ]

  # In the routes file the first match wins; in merge() the last map wins, hence reverse(). Routes come
  # after the legacy list so that a path in both (/, /health) goes where the routes file sends it.
  path_functions = merge(
    { for path in var.legacy_paths : path => local.fallback },
    merge(concat([{}], reverse(local.route_entries))...),
  )

  routed_functions = toset(values(local.path_functions))
  missing          = setsubtract(local.routed_functions, keys(var.backends))

  # /api/v1/datasets/{rest=**} -> ApiV1DatasetsRest; unique per path, prefixed by the method below.
  operation_suffix = {
    for path in keys(local.path_functions) :
    path => path == "/" ? "Root" : join("", [for word in split(" ", trimspace(replace(path, "/[^A-Za-z0-9]+/", " "))) : title(word)])
  }

  backend = {
    for name in local.routed_functions : name => {
      address          = try(var.backends[name].url, "")
      path_translation = "APPEND_PATH_TO_ADDRESS"
      deadline         = try(var.backends[name].deadline, 15)
    }
  }

  firebase_security = [{ firebase = [] }]

  paths = {
    for path, function in local.path_functions : path => merge(
      {
        for method in var.methods : method => {
          operationId        = "${method}${local.operation_suffix[path]}"
          summary            = "${upper(method)} ${path} -> ${function}"
          security           = contains(var.public_paths, path) ? [] : local.firebase_security
          parameters         = strcontains(path, "{rest=**}") ? [{ in = "path", name = "rest", required = true, type = "string" }] : []
          "x-google-backend" = local.backend[function]
          responses          = { default = { description = "Whatever the ${function} function answers." } }
        }
      },
      {
        # Browsers send preflight requests without credentials; the function answers them from
        # CORS_ORIGINS, so the gateway passes them through unauthenticated.
        options = {
          operationId        = "options${local.operation_suffix[path]}"
          summary            = "CORS preflight for ${path}"
          security           = []
          parameters         = strcontains(path, "{rest=**}") ? [{ in = "path", name = "rest", required = true, type = "string" }] : []
          "x-google-backend" = local.backend[function]
          responses          = { default = { description = "CORS preflight answer." } }
        }
      },
    )
  }

  document = {
    swagger  = "2.0"
    info     = { title = var.title, version = "1.0.0", description = "ConvoInsight API, generated from common/gateway_routes.yaml." }
    schemes  = ["https"]
    produces = ["application/json"]
    securityDefinitions = {
      firebase = {
        authorizationUrl     = ""
        flow                 = "implicit"
        type                 = "oauth2"
        "x-google-issuer"    = "https://securetoken.google.com/${var.firebase_project_id}"
        "x-google-jwks_uri"  = "https://www.googleapis.com/service_accounts/v1/metadata/x509/securetoken@system.gserviceaccount.com"
        "x-google-audiences" = var.firebase_project_id
      }
    }
    paths = local.paths
  }

  operation_ids = flatten([for path, operations in local.paths : [for operation in values(operations) : operation.operationId]])
}
