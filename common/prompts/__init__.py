"""Agent prompts: YAML templates checked at load, rendered with caller values, replies parsed in their format.

- ``loader``: ``load_prompts`` (cached per process) and the ``PromptCatalog`` callers get templates from.
- ``templates``: ``PromptTemplate`` and every load-time check (``PromptError`` names file and placeholder).
- ``rendering``: ``render`` -> ``RenderedPrompt``; values are inserted literally.
- ``outputs``: ``parse_output`` (``OutputFormatError`` says why, for the one retry).
- ``configuration``/``parameters``: the layers request > user > domain > system, stored per tenant.

Importing this package reads no file: prompts load on first use.
"""

from common.prompts.configuration import (
    COLLECTION,
    SYSTEM_DEFAULTS,
    EffectiveConfig,
    PromptConfig,
    load_configuration,
    parse_config,
    resolve_configuration,
    save_domain_config,
    save_user_config,
)
from common.prompts.loader import (
    DEFAULT_PROMPTS_DIRECTORY,
    SHIPPED_PROMPTS,
    FilePromptCatalog,
    PromptCatalog,
    clear_prompt_cache,
    load_prompt_file,
    load_prompts,
)
from common.prompts.outputs import OutputFormatError, parse_output, retry_instruction
from common.prompts.parameters import PARAMETERS
from common.prompts.rendering import RenderedPrompt, render
from common.prompts.templates import AGENT_ROLES, OutputSpec, PromptError, PromptTemplate, template_from_mapping

__all__ = [
    "AGENT_ROLES", "COLLECTION", "DEFAULT_PROMPTS_DIRECTORY", "PARAMETERS", "SHIPPED_PROMPTS", "SYSTEM_DEFAULTS",
    "EffectiveConfig", "FilePromptCatalog", "OutputFormatError", "OutputSpec", "PromptCatalog", "PromptConfig",
    "PromptError", "PromptTemplate", "RenderedPrompt", "clear_prompt_cache", "load_configuration",
    "load_prompt_file", "load_prompts", "parse_config", "parse_output", "render", "resolve_configuration",
    "retry_instruction", "save_domain_config", "save_user_config", "template_from_mapping",
]
