import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings for tests: $ASDTHEORY_DATA, by default ../shared/data beside the repo.

    Missing data is an error, not a skip: CI always has it, and a silently skipped test on
    real audio would hide a broken loader.
    """
    root = Path(os.environ["ASDTHEORY_DATA"])  # defaulted by the root conftest.py
    if not (root / "dcase2023t2").is_dir():
        raise FileNotFoundError(
            f"test data not found under {root}: set ASDTHEORY_DATA to the folder holding "
            "dcase2023t2/ and noise/ (../shared/data beside the repository in CI)."
        )
    return root
