#!/bin/sh
# A stand-in for /usr/bin/eslogger in tests: it replays a capture on stdout,
# then exits, hangs, or fails the way eslogger fails without Full Disk Access.
#   FAKE_ES_FIXTURE  capture to replay
#   FAKE_ES_MODE     exit | hang | permission (the 2nd and later runs fail)
#   FAKE_ES_STATE    directory for the run counter and pid list
n=$(cat "$FAKE_ES_STATE/count" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$FAKE_ES_STATE/count"
echo "$$" >> "$FAKE_ES_STATE/pids"
if [ "$FAKE_ES_MODE" = "permission" ] && [ "$n" -ge 2 ]; then
    echo "ERROR: Failed to create new client: ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED" >&2
    exit 1
fi
cat "$FAKE_ES_FIXTURE"
if [ "$FAKE_ES_MODE" = "hang" ]; then
    exec sleep 600
fi
exit 0
