"""One service shape: every service's `services/<name>/app.py` is its routes, its typed
state and one `lifespan`, made into `app` by the kit (create_app, or sink_app for a lake
sink); no factories, no other lifespan names."""

from __future__ import annotations

import importlib
import inspect

import pytest

from services import contract
from services.kit import Kit

pytestmark = pytest.mark.unit

SINKS = {"sink-ticks", "sink-alt", "event-writer"}  # sink_app: the lifespan is the kit's sink


@pytest.mark.parametrize("name", contract.ALL_SERVICES)
def test_every_service_has_one_shape(name: str) -> None:
    module = importlib.import_module(f"services.{name.replace('-', '_')}.app")
    assert "app" in module.__all__
    app = module.app
    kit = app.state.kit if hasattr(app, "state") else app.kit  # the OMS's fast path wraps its app
    assert isinstance(kit, Kit) and kit.settings.service == name
    own = {n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__}
    assert not own & {"build", "run", "_run", "_lifespan", "make_app"}, own
    if name not in SINKS:
        assert inspect.isfunction(module.lifespan), f"{name}: no module-level lifespan"
