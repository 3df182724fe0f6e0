import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CWRU = Path(os.environ.get("EDGESNN_CWRU", REPO.parent / "shared" / "datasets" / "cwru"))


@pytest.fixture(scope="session")
def cwru_dir() -> Path:
    if not (CWRU / "MANIFEST.csv").is_file():
        pytest.skip(f"CWRU data not found at {CWRU} (set EDGESNN_CWRU)")
    return CWRU


def run_cli(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run the installed `edgesnn` console command as a user would."""
    exe = Path(sys.executable).with_name("edgesnn")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
