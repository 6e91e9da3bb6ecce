#!/usr/bin/env bash
# ci: beside-the-venv
# every-eval-ever (the shared eval-results schema and its validator) for the export-eee tests.
# It lives in its own virtualenv (.venv-eee), out of pricebench's dependencies: the package
# declares Python >= 3.12 and pulls numpy >= 2.4.1 (no 3.11 wheel), yet its validator runs on
# 3.11 when installed alone with the few packages it imports.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=0.3.0
if [ -x .venv-eee/bin/python ] && .venv-eee/bin/python -m pip show every-eval-ever 2>/dev/null \
    | grep -qx "Version: $VERSION"; then
  echo "every-eval-ever $VERSION already installed in .venv-eee"; exit 0
fi
[ -x .venv-eee/bin/python ] || python3 -m venv .venv-eee
.venv-eee/bin/python -m pip install -q --upgrade pip
.venv-eee/bin/python -m pip install -q --ignore-requires-python --no-deps "every-eval-ever==$VERSION"
.venv-eee/bin/python -m pip install -q jsonschema pydantic "rich<15" pyyaml requests
.venv-eee/bin/python -m every_eval_ever.validate --help >/dev/null
echo "every-eval-ever $VERSION installed in .venv-eee"
