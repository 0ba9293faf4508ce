#!/usr/bin/env bash
# The MONAI model-zoo's code-format checks, applied to monai_bundle/ with the zoo's own settings
# (setup.cfg and pyproject.toml here are copies of Project-MONAI/model-zoo's, dev branch, 2024-10):
#   runtests.sh --codeformat: isort --check, black --skip-magic-trailing-comma --check, flake8
#   .pre-commit-config.yaml: pretty-format-json --no-sort-keys --indent=4, check-added-large-files --maxkb=1024
#     (a file over 1 MB must be declared in large_files.yml, the zoo's way of hosting weights).
# Usage: bash .ci/zoo_lint/run.sh [--fix]   (from anywhere; uses .venv/bin/python unless PYTHON is set)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
bin="$(dirname "$py")"
cd "$root/monai_bundle"
if [[ "${1:-}" == "--fix" ]]; then
    "$py" -m isort --settings-path "$here/setup.cfg" -q .
    "$py" -m black -q --config "$here/pyproject.toml" --skip-magic-trailing-comma .
    find . -name '*.json' -not -path '*/.*' -print0 | xargs -0 -n1 "$bin/pretty-format-json" --autofix --no-sort-keys --indent=4 >/dev/null || true
fi
status=0
"$py" -m isort --settings-path "$here/setup.cfg" --check-only -q . || { echo "zoo lint: isort failed"; status=1; }
"$py" -m black -q --config "$here/pyproject.toml" --skip-magic-trailing-comma --check . || { echo "zoo lint: black failed"; status=1; }
"$py" -m flake8 --config "$here/setup.cfg" . || { echo "zoo lint: flake8 failed"; status=1; }
while IFS= read -r -d '' json; do
    "$bin/pretty-format-json" --no-sort-keys --indent=4 "$json" >/dev/null || { echo "zoo lint: pretty-format-json: $json"; status=1; }
done < <(find . -name '*.json' -not -path '*/.*' -not -path './runs/*' -not -path './eval/*' -print0)
"$py" - <<'PY' || status=1
# check-added-large-files (--maxkb=1024), except the files large_files.yml declares
import pathlib, subprocess, sys, yaml
declared = set()
if pathlib.Path("large_files.yml").exists():
    declared = {entry["path"] for entry in yaml.safe_load(pathlib.Path("large_files.yml").read_text())["large_files"]}
tracked = subprocess.run(["git", "ls-files", "."], capture_output=True, text=True, check=True).stdout.split()
large = [p for p in tracked if pathlib.Path(p).is_file() and pathlib.Path(p).stat().st_size > 1024 * 1024]
bad = [p for p in large if p not in declared]
for p in bad:
    print(f"zoo lint: {p} is over 1 MB and not declared in large_files.yml")
sys.exit(1 if bad else 0)
PY
[[ $status == 0 ]] && echo "zoo lint: passed (isort, black, flake8, pretty-format-json, large files)"
exit $status
