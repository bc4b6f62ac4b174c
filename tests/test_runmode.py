"""The run mode read from the environment."""

import pytest

from asdtheory.repro.runmode import run_mode


def test_run_mode_defaults_to_ci_and_refuses_unknown_modes(monkeypatch):
    monkeypatch.delenv("ASDTHEORY_MODE", raising=False)
    assert run_mode() == "ci"
    monkeypatch.setenv("ASDTHEORY_MODE", " Full ")
    assert run_mode() == "full"
    monkeypatch.setenv("ASDTHEORY_MODE", "fast")
    with pytest.raises(ValueError, match="ASDTHEORY_MODE must be one of"):
        run_mode()
