#!/bin/sh
# omk's demonstration agent: makes the edit each slice of the demo plan asks
# for, in the slice's worktree, the way a coding agent would.
set -e
sleep 1
case "$OMK_SLICE_ID" in
  upper)
    printf '%s\n' "cmd_upper() { printf '%s\\n' \"\$*\" | tr '[:lower:]' '[:upper:]'; }" > lib/upper.sh
    printf '%s\n' '. tests/lib.sh' 'check "HELLO WORLD" sh bin/textkit upper hello world' > tests/test_upper.sh
    ;;
  lower)
    printf '%s\n' "cmd_lower() { printf '%s\\n' \"\$*\" | tr '[:upper:]' '[:lower:]'; }" > lib/lower.sh
    printf '%s\n' '. tests/lib.sh' 'check "hello world" sh bin/textkit lower HELLO World' > tests/test_lower.sh
    ;;
  count)
    printf '%s\n' 'cmd_count() { echo $#; }' > lib/count.sh
    printf '%s\n' '. tests/lib.sh' 'check 3 sh bin/textkit count one two three' > tests/test_count.sh
    ;;
  docs)
    {
      echo "# textkit"
      echo
      echo 'Small text tools: `sh bin/textkit COMMAND ARGS...`'
      echo
      echo "## Commands"
      echo
      for f in lib/*.sh; do echo "- \`$(basename "$f" .sh)\`"; done
      echo
      echo 'Run the tests with `sh tests/run.sh`.'
    } > README.md
    ;;
  *)
    echo "demo agent: no edit scripted for slice '$OMK_SLICE_ID'" >&2
    exit 1
    ;;
esac
echo "demo agent: slice $OMK_SLICE_ID done (attempt $OMK_ATTEMPT)"
