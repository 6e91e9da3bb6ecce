#!/usr/bin/env bash
# ci: beside-the-venv
# Debian's chromium for the report's Playwright tests (`playwright install` cannot download here).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }
fi
/usr/bin/chromium --version
