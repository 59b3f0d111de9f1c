#!/bin/sh
# A stand-in for eslogger whose capture shows a pid being reused. The
# capture's `security` process (pid 32520) is rewritten:
#   1st run: to this script's own pid: the extension's own child, ignored;
#            then it exits.
#   2nd run: to the 1st run's pid with other pidversions: another process
#            that got the dead child's pid, which must be reported; then it
#            stays running.
#   FAKE_ES_FIXTURE  capture to replay
#   FAKE_ES_STATE    directory for the run counter and the first pid
n=$(cat "$FAKE_ES_STATE/count" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$FAKE_ES_STATE/count"
if [ "$n" = 1 ]; then
    echo "$$" > "$FAKE_ES_STATE/first_pid"
    sed "s/\"pid\":32520,/\"pid\":$$,/g" "$FAKE_ES_FIXTURE"
    exit 0
fi
first=$(cat "$FAKE_ES_STATE/first_pid")
sed -e "s/\"pid\":32520,/\"pid\":$first,/g" -e 's/"pidversion":1/"pidversion":9/g' "$FAKE_ES_FIXTURE"
exec sleep 600
