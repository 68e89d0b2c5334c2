from __future__ import annotations

from collections.abc import Iterator

import pytest
from scripted import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer().start()
    try:
        yield running
    finally:
        running.stop()
