"""compose.yaml is a valid Compose file: the Compose Specification's JSON schema accepts it."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMA_FILE = Path(__file__).parent / "schema" / "compose-spec.json"
# The vendored file as shipped by check-jsonschema 0.39.0 (see schema/README.md).
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_vendored_schema_is_the_published_one() -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_matches_the_compose_specification(
    stack: Any, validator: jsonschema.Draft202012Validator
) -> None:
    assert _errors(validator, stack.config) == []


def test_schema_check_catches_a_misspelt_key(
    stack: Any, validator: jsonschema.Draft202012Validator
) -> None:
    # Guards the test above: the schema is strict enough to see a typo in a service.
    broken = copy.deepcopy(stack.config)
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    assert any("helthcheck" in error for error in _errors(validator, broken))


def test_schema_check_catches_a_wrong_condition(
    stack: Any, validator: jsonschema.Draft202012Validator
) -> None:
    broken = copy.deepcopy(stack.config)
    broken["services"]["bridge"]["depends_on"]["redis"]["condition"] = "service_ready"
    assert _errors(validator, broken)


def test_compose_refuses_to_start_without_each_secret(
    stack: Any, stack_with_env: Callable[[Mapping[str, str]], Any]
) -> None:
    required = sorted({ref.name for ref in stack.references() if ref.op == ":?"})
    assert required, "compose.yaml demands no secret at all"
    for name in required:
        env = {key: value for key, value in stack.env.items() if key != name}
        with pytest.raises(ValueError, match=name):
            stack_with_env(env)
        with pytest.raises(ValueError, match=name):  # set but empty, as in .env.example
            stack_with_env({**env, name: ""})


def test_env_example_lists_every_variable_compose_requires(
    stack: Any, env_example: dict[str, str]
) -> None:
    required = {ref.name for ref in stack.references() if ref.op in (":?", "?")}
    assert sorted(required - set(env_example)) == []
