"""Check every resource and data source under terraform/ against the providers' real schemas, offline.

The schemas come from the prebuilt CDK for Terraform bindings on npm (``@cdktf/provider-*``): each package's
``.jsii`` assembly describes every resource and data source of one exact provider release. ``providers.yaml``
pins the packages; ``schema_source`` fetches and reduces them once into a cache; ``hcl_check`` checks the HCL.
"""
