"""The MONAI model-zoo's code-format checks (isort, black, flake8, pretty-format-json, large files) pass on
``monai_bundle/`` with the zoo's own settings (``.ci/zoo_lint/``)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bundle_passes_the_model_zoo_lint():
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "zoo_lint" / "run.sh")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "zoo lint: passed" in result.stdout
