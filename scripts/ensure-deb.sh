#!/usr/bin/env bash
# ensure-deb.sh COMMAND PACKAGE: installs the Debian package that provides
# COMMAND when COMMAND is missing. Fails (never skips) when it cannot.
set -euo pipefail
cmd=$1 pkg=$2
if command -v "$cmd" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deb: $cmd is missing and there is no apt-get to install $pkg; install it by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "ensure-deb: installing $pkg for $cmd" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
command -v "$cmd" >/dev/null 2>&1 || { echo "ensure-deb: $pkg installed but $cmd is still missing" >&2; exit 1; }
