"""The fast tier stays fast: a unit test that starts a process fails and says where it belongs."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.unit


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match=r"mark its module pytest\.mark\.process"):
        subprocess.run(["true"], check=False)

