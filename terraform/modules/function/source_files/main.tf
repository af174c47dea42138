# Which files go into one function's source zip, and where inside it. Pure computation (no provider),
# so tests/unit/terraform/test_tf_packaging.py runs it offline against a throw-away tree.
#
# Layout of the zip, as the Python 3.11 buildpack expects it:
#   main.py (+ any other file of functions/<name>/)   at the root: the entry point module
#   common/**, prompts/**                               the shared package and prompt files
#   requirements.txt                                    functions/<name>/requirements.txt if present,
#                                                       else the repository's requirements.txt
locals {
  function_dir = "${var.repo_root}/functions/${var.function_name}"

  function_files = {
    for relative in fileset(local.function_dir, "**") :
    relative => "${local.function_dir}/${relative}"
    if !can(regex(var.exclude_pattern, relative))
  }

  # Later maps win in merge(): a shared file never shadows the function's own files.
  shared_files = merge([
    for dir in var.shared_dirs : {
      for relative in fileset("${var.repo_root}/${dir}", "**") :
      "${dir}/${relative}" => "${var.repo_root}/${dir}/${relative}"
      if !can(regex(var.exclude_pattern, relative))
    }
  ]...)

  own_requirements = "${local.function_dir}/requirements.txt"
  requirements     = fileexists(local.own_requirements) ? local.own_requirements : "${var.repo_root}/requirements.txt"

  files = merge(local.shared_files, local.function_files, { "requirements.txt" = local.requirements })
}
