"""Fixtures: each overlay rendered once per session, and compose.yaml as written."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.k8s.manifests import K8S, OVERLAYS, REPO, Rendered, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    return {overlay: Rendered(overlay, render(K8S / "overlays" / overlay)) for overlay in OVERLAYS}


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, Rendered]) -> Rendered:
    return rendered[request.param]


@pytest.fixture(scope="session")
def prod(rendered: dict[str, Rendered]) -> Rendered:
    return rendered["prod"]


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]
