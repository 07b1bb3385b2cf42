#!/usr/bin/env bash
# Debian packages the tests use: ZooKeeper and Redis (real servers for the zk:// and redis://
# tests), the shells whose completion is tested, and man/groff for the man page. Idempotent.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
command -v groff >/dev/null 2>&1 || need+=(groff-base)
command -v man >/dev/null 2>&1 || need+=(man-db)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The tests start their own redis-server on free ports; the package's service is not wanted.
if command -v service >/dev/null 2>&1 && [ -f /etc/init.d/redis-server ]; then
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
# Azurite, the Azure Blob Storage emulator the az:// tests start (tests/servers/azure.py), from
# npm into the project's .cache/azurite; skipped when it is there already.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AZURITE_VERSION=3.35.0
if [ ! -x "$ROOT/.cache/azurite/node_modules/.bin/azurite-blob" ] \
   || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$ROOT/.cache/azurite/node_modules/azurite/package.json" 2>/dev/null; then
  if ! command -v npm >/dev/null 2>&1; then
    need_node=(nodejs npm)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_node[@]}" >/dev/null
  fi
  mkdir -p "$ROOT/.cache/azurite"
  npm install --prefix "$ROOT/.cache/azurite" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null
fi
