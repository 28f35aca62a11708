#!/usr/bin/env bash
# Installs the official Python MCP SDK (the `mcp` package, pinned) from PyPI
# into a venv at DIR (default: target/mcp-client), for the tests that drive
# `omk mcp` with a real MCP client. Idempotent.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/mcp-client"}
MCP_VERSION=1.30.0
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import mcp.client.stdio' 2>/dev/null; then
  exit 0
fi
for py in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3 python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3 python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || continue
  echo "install-mcp-client: mcp $MCP_VERSION with $py" >&2
  rm -rf "$dir"
  "$py" -m venv "$dir" || continue
  if "$dir/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_VERSION" \
      && "$dir/bin/python" -c 'import mcp.client.stdio'; then
    exit 0
  fi
done
echo "install-mcp-client: no Python >= 3.10 could install mcp==$MCP_VERSION" >&2
exit 1
