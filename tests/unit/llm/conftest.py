"""The scripted model provider, fresh for each test of the LLM client."""

from __future__ import annotations

import pytest

from tests.scripted_llm import install_scripted_llm


@pytest.fixture
def script():
    script = install_scripted_llm()
    script.reset()
    yield script
    assert not script.unscripted, "a call reached the scripted provider with no step for it"
