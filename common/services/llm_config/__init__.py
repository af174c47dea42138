"""A tenant's LLM configuration: which providers and models exist, their saved keys, and the active choice.

- ``registry``: providers and chat models from LiteLLM's bundled map, the same for every server whatever keys
  it holds (the original listed only providers whose key was in the server's environment, LEGACY_API.md D12);
- ``stored_keys``: one encrypted key per (tenant, provider), shown only masked, optionally verified by a call;
- ``key_checks``: a key checked before it is saved by listing its models (no tokens), where its calls will go;
- ``active``: the tenant's chosen provider, model and parameters, the default of questions that name no model;
- ``fields``: the checks every route applies to these inputs before anything is read or written.
"""
