#!/bin/sh
# omk's demonstration agent: makes the edit each slice of the demo plan asks
# for, in the slice's worktree, the way a coding agent would — including the
# mistakes a coding agent makes, and their repair once omk tells it what
# went wrong (a retry's attempt number is $OMK_ATTEMPT; what failed is in
# the file $OMK_FEEDBACK names).
set -e
sleep 1
case "$OMK_SLICE_ID" in
  upper|lower)
    # Both first attempts name their helper `change_case`: each passes its
    # own tests, but merged together they break tests/test_unique.sh. The
    # one omk takes out is told so, and names its helper after itself.
    helper=change_case
    if [ "$OMK_ATTEMPT" -gt 1 ]; then helper="${OMK_SLICE_ID}_case"; fi
    case "$OMK_SLICE_ID" in
      upper) from='[:lower:]'; to='[:upper:]'; check='check "HELLO WORLD" sh bin/textkit upper hello world' ;;
      lower) from='[:upper:]'; to='[:lower:]'; check='check "hello world" sh bin/textkit lower HELLO World' ;;
    esac
    {
      printf '%s\n' "$helper() { tr '$from' '$to'; }"
      printf '%s\n' "cmd_$OMK_SLICE_ID() { printf '%s\\n' \"\$*\" | $helper; }"
    } > "lib/$OMK_SLICE_ID.sh"
    printf '%s\n' '. tests/lib.sh' "$check" > "tests/test_$OMK_SLICE_ID.sh"
    ;;
  count)
    # The first attempt is off by one; told by the failed test, the second
    # is right.
    if [ "$OMK_ATTEMPT" -eq 1 ]; then
      printf '%s\n' 'cmd_count() { echo $(($# + 1)); }' > lib/count.sh
    else
      printf '%s\n' 'cmd_count() { echo $#; }' > lib/count.sh
    fi
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
