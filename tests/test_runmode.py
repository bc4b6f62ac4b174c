"""Run mode and budget overrides read from the environment."""

import pytest

from asdtheory.repro.runmode import budget, run_mode


def test_run_mode_defaults_to_ci_and_refuses_unknown_modes(monkeypatch):
    monkeypatch.delenv("ASDTHEORY_MODE", raising=False)
    assert run_mode() == "ci"
    monkeypatch.setenv("ASDTHEORY_MODE", " Full ")
    assert run_mode() == "full"
    monkeypatch.setenv("ASDTHEORY_MODE", "fast")
    with pytest.raises(ValueError, match="ASDTHEORY_MODE must be one of"):
        run_mode()


def test_budget_overrides_only_the_named_sizes(monkeypatch):
    monkeypatch.delenv("ASDTHEORY_BUDGET", raising=False)
    assert budget(seeds=3, steps=500) == {"seeds": 3, "steps": 500}
    monkeypatch.setenv("ASDTHEORY_BUDGET", "steps=2, seeds=1")
    assert budget(seeds=3, steps=500) == {"seeds": 1, "steps": 2}
    monkeypatch.setenv("ASDTHEORY_BUDGET", "steps=7")
    assert budget(seeds=3, steps=500) == {"seeds": 3, "steps": 7}


@pytest.mark.parametrize("text", ["epochs=2", "steps", "steps=-1", "steps=two"])
def test_budget_refuses_unknown_names_and_bad_values(monkeypatch, text):
    monkeypatch.setenv("ASDTHEORY_BUDGET", text)
    with pytest.raises(ValueError, match="ASDTHEORY_BUDGET entry"):
        budget(seeds=3, steps=500)
