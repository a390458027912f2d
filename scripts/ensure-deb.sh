#!/usr/bin/env bash
# ensure-deb.sh COMMAND PACKAGE: installs the Debian package that provides
# COMMAND when COMMAND is missing. COMMAND may be a path pattern for programs
# off the PATH (/usr/lib/postgresql/*/bin/initdb). Fails (never skips) when it
# cannot. Services a package would start (PostgreSQL, MariaDB) are not
# started: the tests start their own servers.
set -euo pipefail
cmd=$1 pkg=$2
have() {
  case "$1" in
    */*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
if have "$cmd"; then
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
# RUNLEVEL=1: invoke-rc.d starts no service while installing.
$sudo env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
have "$cmd" || { echo "ensure-deb: $pkg installed but $cmd is still missing" >&2; exit 1; }
