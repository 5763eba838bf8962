"""Every rendered object is one a Kubernetes 1.32 API server would accept.

Built-in kinds: the 1.32 OpenAPI schemas that kubernetes-validate ships, strict (an unknown field
fails, as kubectl's default server-side field validation does). KEDA's kinds: the CRD schemas
vendored in schema/keda (see its README), with unknown fields refused the same way.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.k8s.manifests import Rendered

KUBERNETES_VERSION = "1.32"
KEDA = Path(__file__).parent / "schema" / "keda"
# The vendored CRDs as recorded in schema/keda/README.md: an edit there is deliberate.
KEDA_CRDS_SHA256 = {
    "scaledobjects.keda.sh.yaml": (
        "09273e8033a42170d1c3c4af45af826f691d3495e2093a021068b7a1f5c98fb7"
    ),
    "triggerauthentications.keda.sh.yaml": (
        "64b245cd2c32c885b2366a34366ebbae5a5ba9789c01145e78797b38176f8d58"
    ),
}


def _closed(schema: Any) -> Any:
    """The schema with unknown fields refused wherever the CRD lists the known ones.

    A structural CRD schema prunes unknown fields silently; kubectl's default (strict) field
    validation rejects them instead. `additionalProperties` maps and preserve-unknown-fields
    nodes stay open.
    """
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    validators = {}
    for path in sorted(KEDA.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _closed(version["schema"]["openAPIV3Schema"])
            jsonschema.Draft7Validator.check_schema(schema)
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


CRDS = _crd_validators()


def validate(obj: dict[str, Any]) -> list[str]:
    """Why the API server would refuse this object (empty: it would accept it).

    A kind with no schema here raises (SchemaNotFoundError): nothing is applied unchecked.
    """
    key = (obj["apiVersion"], obj["kind"])
    if key in CRDS:
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in CRDS[key].iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path)) or '<root>'}: {error.message}"]
    return []


def test_vendored_keda_crds_are_the_recorded_ones() -> None:
    found = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in KEDA.glob("*.yaml")}
    assert found == KEDA_CRDS_SHA256


def test_every_object_validates_offline(overlay: Rendered) -> None:
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errors
        for o in overlay.objects
        if (errors := validate(o))
    }
    assert problems == {}


def test_prod_uses_keda(prod: Rendered) -> None:
    assert len(prod.of_kind("ScaledObject")) == len(prod.workers())
    assert prod.of_kind("TriggerAuthentication")


def test_validation_catches_a_misspelt_field(prod: Rendered) -> None:
    """The checks above can fail: one wrong field name in each kind of schema is refused."""
    deployment = copy.deepcopy(prod.get("Deployment", "scorer"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 60
    assert validate(deployment)

    scaled = copy.deepcopy(prod.get("ScaledObject", "scorer"))
    scaled["spec"]["cooldownPeriods"] = 60
    assert validate(scaled)

    auth = copy.deepcopy(prod.of_kind("TriggerAuthentication")[0])
    auth["spec"]["secretTargetRef"][0].pop("key")
    assert validate(auth)


@pytest.mark.parametrize("kind", ["ScaledObject", "TriggerAuthentication"])
def test_keda_schemas_are_loaded(kind: str) -> None:
    assert ("keda.sh/v1alpha1", kind) in CRDS
