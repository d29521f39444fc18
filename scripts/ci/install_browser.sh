#!/usr/bin/env bash
# Installs what the browser tests of `vist3a view` / `vist3a app` need (tests/test_*_browser.py):
# Debian's Chromium and Playwright's Python driver (which drives that Chromium; no browser download).
# Idempotent: skips what is already there. Without them the browser tests skip with a reason.
# Usage (from the repository root): bash scripts/ci/install_browser.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "install_browser: installing Debian's chromium"
    (apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }) \
      || echo "install_browser: could not install chromium; the browser tests will skip"
  else
    echo "install_browser: no chromium and no root apt-get; the browser tests will skip"
  fi
fi

if ! python3 -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "install_browser: installing playwright (Python driver only)"
  python3 -m pip install -q playwright -c constraints.txt \
    || echo "install_browser: could not install playwright; the browser tests will skip"
fi
exit 0
