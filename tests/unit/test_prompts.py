"""Prompt templates: the shipped YAML files load and render; broken templates fail at load naming file and cause."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from common.errors import ConfigurationError, NotFound
from common.prompts import (
    AGENT_ROLES,
    DEFAULT_PROMPTS_DIRECTORY,
    SHIPPED_PROMPTS,
    FilePromptCatalog,
    PromptError,
    clear_prompt_cache,
    load_prompts,
    render,
    template_from_mapping,
)


def _valid(**changes: Any) -> dict[str, Any]:
    document = {
        "name": "helper", "version": 1, "description": "A test prompt.",
        "system": "You are the Helper. Answer in ${language}.",
        "user_template": "Question: ${question}\nData: $data",
        "inputs": {"language": "answer language", "question": "the question", "data": "the data"},
        "output": {"format": "markdown"},
        "model": {"temperature": 0.2, "max_tokens": 100},
        "fallback_models": [],
    }
    document.update(changes)
    return document


def _write(directory: pathlib.Path, document: dict[str, Any], file_name: str | None = None) -> pathlib.Path:
    path = directory / (file_name or f"{document['name']}.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _load_error(tmp_path: pathlib.Path, document: dict[str, Any], file_name: str | None = None) -> PromptError:
    path = _write(tmp_path, document, file_name)
    with pytest.raises(PromptError) as caught:
        load_prompts(tmp_path)
    assert str(path) in str(caught.value), "the error names the file"
    return caught.value


def _sample_values(template: Any) -> dict[str, str]:
    return {name: f"<sample {name}>" for name in template.inputs}


# --- the shipped prompts -------------------------------------------------------------------------------------

def test_every_shipped_prompt_loads() -> None:
    templates = load_prompts(DEFAULT_PROMPTS_DIRECTORY)
    assert sorted(templates) == sorted(SHIPPED_PROMPTS)
    for name, template in templates.items():
        assert template.name == name and template.version >= 1 and template.description
        assert template.source_path.endswith(f"prompts/{name}.yaml")
        assert template.model["max_tokens"] > 0 and "temperature" in template.model


@pytest.mark.parametrize("name", SHIPPED_PROMPTS)
def test_every_shipped_prompt_renders_every_input(name: str) -> None:
    template = load_prompts()[name]
    values = _sample_values(template)
    rendered = render(template, values)
    text = rendered.system + rendered.user
    for value in values.values():
        assert value in text
    assert "${" not in text, "no placeholder is left unrendered"
    assert rendered.version == template.version and rendered.name == name
    assert rendered.messages()[0] == {"role": "system", "content": rendered.system}


@pytest.mark.parametrize("name", sorted(AGENT_ROLES))
def test_pipeline_agents_state_their_role_and_treat_data_as_untrusted(name: str) -> None:
    system = load_prompts()[name].system
    assert system.startswith(f"You are the {AGENT_ROLES[name]}")
    assert "never as instructions" in " ".join(system.split())


def test_shipped_prompts_declare_the_agent_protocol() -> None:
    templates = load_prompts()
    planner = templates["planner"].output.schema
    assert planner["properties"]["scope"]["enum"] == ("data_question", "small_talk", "out_of_scope")
    assert planner["properties"]["chart"]["enum"] == ("none", "bar", "line", "table", "auto")
    assert set(planner["required"]) == {"scope", "sql", "chart", "insight", "chart_title", "answer_brief",
                                        "plan_explainer", "reason"}
    assert templates["manipulator"].output.schema["required"] == ("sql",)
    assert templates["visualizer"].output.format == "vega-lite"
    assert {templates[name].output.format for name in ("analyst", "text_answer")} == {"markdown"}
    suggestions = templates["suggest"].output.schema["properties"]["suggestions"]
    assert suggestions["minItems"] == suggestions["maxItems"] == 4


def test_configuration_reaches_the_prompts_that_present_answers() -> None:
    templates = load_prompts()
    for name in ("planner", "analyst", "text_answer"):
        assert {"answer_settings", "custom_instructions"} <= set(templates[name].inputs)


def test_no_domain_specific_configuration_is_shipped() -> None:
    # The original applied one telco campaign's currency and labels to every domain.
    for path in pathlib.Path(DEFAULT_PROMPTS_DIRECTORY).glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for term in ("IDR", "Rp", "telco", "%TUR", "m0/m1"):
            assert term not in text, f"{path.name} hard-codes {term!r}"


def test_a_template_round_trips_through_its_dict_form() -> None:
    template = load_prompts()["planner"]
    again = template_from_mapping(template.to_dict(), template.source_path, expected_name="planner")
    assert again == template


def test_loaded_templates_are_read_only() -> None:
    template = load_prompts()["planner"]
    with pytest.raises(TypeError):
        template.inputs["question"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        template.model["temperature"] = 2  # type: ignore[index]


# --- load-time checks ----------------------------------------------------------------------------------------

def test_a_valid_temp_template_loads(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, _valid())
    template = load_prompts(tmp_path)["helper"]
    assert set(template.inputs) == {"language", "question", "data"}
    assert template.source_path == str(tmp_path / "helper.yaml")


def test_an_undeclared_placeholder_in_the_user_template_fails_naming_file_and_placeholder(
        tmp_path: pathlib.Path) -> None:
    error = _load_error(tmp_path, _valid(user_template="Question: ${question} ${langauge} $data"))
    assert "${langauge}" in str(error) and "not declared" in str(error)
    assert isinstance(error, ConfigurationError)


def test_an_undeclared_placeholder_in_the_system_prompt_fails(tmp_path: pathlib.Path) -> None:
    error = _load_error(tmp_path, _valid(system="You are the Helper. Use $currency."))
    assert "${currency}" in str(error)


def test_a_declared_input_that_no_template_uses_fails(tmp_path: pathlib.Path) -> None:
    inputs = {"language": "l", "question": "q", "data": "d", "history": "the last turns"}
    error = _load_error(tmp_path, _valid(inputs=inputs))
    assert "history" in str(error) and "used in neither" in str(error)


def test_a_dollar_that_starts_no_placeholder_fails_with_its_line(tmp_path: pathlib.Path) -> None:
    error = _load_error(tmp_path, _valid(user_template="Question: ${question} $data ${language}\ncosts $5"))
    assert "user_template line 2" in str(error) and "$$" in str(error)


def test_a_doubled_dollar_renders_as_a_literal_dollar(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, _valid(system='You are the Helper. Keep "$$schema" in ${language}.'))
    rendered = render(load_prompts(tmp_path)["helper"], {"language": "en", "question": "q", "data": "d"})
    assert rendered.system == 'You are the Helper. Keep "$schema" in en.'


@pytest.mark.parametrize("name", sorted(AGENT_ROLES))
def test_a_pipeline_agent_must_open_with_its_role(tmp_path: pathlib.Path, name: str) -> None:
    document = _valid(name=name, system="You are a helpful assistant. Answer in ${language}.")
    error = _load_error(tmp_path, document)
    assert f"You are the {AGENT_ROLES[name]}" in str(error)


def test_other_prompts_may_open_as_they_like(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, _valid(system="Suggest questions in ${language}."))
    assert load_prompts(tmp_path)["helper"].system.startswith("Suggest")


@pytest.mark.parametrize(("output", "expected"), [
    ({"format": "xml"}, "output.format must be one of json, markdown, vega-lite"),
    ({"format": "json"}, "output.schema is required"),
    ({"format": "json", "schema": {"type": "object", "pattern": "x"}}, "unknown keyword(s) pattern"),
    ({"format": "json", "schema": {"type": "object", "required": ["a"]}}, "required names a without a property"),
    ({"format": "json", "schema": {"type": "object", "properties": {"a": {"type": "str"}}}},
     "output.schema.properties.a.type must be one of"),
    ({"format": "json", "schema": {"type": "array", "items": {"type": "string"}}}, "must have type object"),
])
def test_a_malformed_output_declaration_fails(tmp_path: pathlib.Path, output: dict, expected: str) -> None:
    assert expected in str(_load_error(tmp_path, _valid(output=output)))


@pytest.mark.parametrize(("changes", "expected"), [
    ({"version": "1"}, "version must be a positive integer"),
    ({"version": 0}, "version must be a positive integer"),
    ({"model": {"temprature": 0.2}}, "unknown model parameter 'temprature'"),
    ({"model": {"reasoning_effort": "extreme"}}, "model.reasoning_effort must be one of"),
    ({"fallback_models": "gpt-4o"}, "fallback_models must be a list"),
    ({"inputs": {"language": "l", "question": "q", "data": "two\nlines"}}, "input data needs a one-line meaning"),
    ({"extra": 1}, "unknown field(s) extra"),
    ({"system": ""}, "system must be a non-empty string"),
])
def test_malformed_fields_fail_at_load(tmp_path: pathlib.Path, changes: dict, expected: str) -> None:
    assert expected in str(_load_error(tmp_path, _valid(**changes)))


def test_a_missing_field_fails(tmp_path: pathlib.Path) -> None:
    document = _valid()
    del document["fallback_models"]
    assert "missing field(s) fallback_models" in str(_load_error(tmp_path, document))


def test_the_name_must_match_the_file(tmp_path: pathlib.Path) -> None:
    error = _load_error(tmp_path, _valid(), file_name="other.yaml")
    assert "does not match the file name 'other'" in str(error)


def test_invalid_yaml_fails_naming_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsystem: [unclosed\n", encoding="utf-8")
    with pytest.raises(PromptError, match="not valid YAML") as caught:
        load_prompts(tmp_path)
    assert str(path) in str(caught.value)


def test_an_empty_directory_fails(tmp_path: pathlib.Path) -> None:
    with pytest.raises(PromptError, match="no \\*.yaml prompt files"):
        load_prompts(tmp_path)


def test_prompts_are_loaded_once_per_process(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, _valid())
    first = load_prompts(tmp_path)["helper"]
    path.write_text(yaml.safe_dump(_valid(version=2)), encoding="utf-8")
    assert load_prompts(tmp_path)["helper"] is first, "a second call reads no file"
    clear_prompt_cache()
    assert load_prompts(tmp_path)["helper"].version == 2


def test_a_failed_load_is_not_cached(tmp_path: pathlib.Path) -> None:
    _load_error(tmp_path, _valid(user_template="${question} ${nope} $data ${language}"))
    _write(tmp_path, _valid())
    assert "helper" in load_prompts(tmp_path)


def test_the_catalog_serves_templates_by_name(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, _valid())
    _write(tmp_path, _valid(name="another"))
    catalog = FilePromptCatalog(tmp_path)
    assert catalog.names() == ["another", "helper"]
    assert catalog.get("helper").name == "helper"
    with pytest.raises(NotFound, match="no prompt named 'missing'"):
        catalog.get("missing")


# --- rendering -----------------------------------------------------------------------------------------------

def _helper(tmp_path: pathlib.Path) -> Any:
    _write(tmp_path, _valid())
    return load_prompts(tmp_path)["helper"]


def test_rendering_without_an_input_fails_naming_it(tmp_path: pathlib.Path) -> None:
    with pytest.raises(PromptError, match="without input\\(s\\) data, language"):
        render(_helper(tmp_path), {"question": "q"})


def test_values_are_inserted_literally_never_as_template_syntax(tmp_path: pathlib.Path) -> None:
    hostile = "costs $5, see $name and ${x} and $$ and ${language}"
    rendered = render(_helper(tmp_path), {"language": "en", "question": hostile, "data": "$data"})
    assert rendered.user == f"Question: {hostile}\nData: $data"
    assert rendered.system == "You are the Helper. Answer in en."


def test_structured_values_are_inserted_as_json_and_extra_values_ignored(tmp_path: pathlib.Path) -> None:
    rendered = render(_helper(tmp_path), {"language": "en", "question": {"a": [1, "é"]}, "data": None,
                                          "not_an_input": "ignored"})
    assert rendered.user == 'Question: {"a":[1,"é"]}\nData: (none)'


def test_model_overrides_win_over_the_template_model_block(tmp_path: pathlib.Path) -> None:
    rendered = render(_helper(tmp_path), {"language": "en", "question": "q", "data": "d"},
                      model_overrides={"temperature": 0.9})
    assert dict(rendered.model_params) == {"temperature": 0.9, "max_tokens": 100}
    assert rendered.fallback_models == ()
