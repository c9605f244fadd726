#!/usr/bin/env bash
# The explorer's browser test drives Debian's Chromium (browsers cannot be
# downloaded here). Install it when we can (root with apt-get), else say
# that the browser test will skip.
set -u
if [ -x /usr/bin/chromium ] || [ -n "${TALLY_CHROMIUM:-}" ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the explorer's browser test…" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium; the browser test will skip" >&2
else
  echo "chromium is not installed (apt-get install chromium): the explorer's browser test will skip" >&2
fi
exit 0
