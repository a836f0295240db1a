#!/usr/bin/env bash
# cli_stall_test.sh COSTORE: the CLI against a stopped costored (SIGSTOP):
# `costore ls` and `costore put` exit 9 ("daemon unreachable") saying the
# daemon stopped answering, instead of waiting forever. Run through
# tests/support/with-costored (it exports DBUS_SESSION_BUS_ADDRESS and
# COSTORE_TEST_DIR). Nothing here measures time: ctest's timeout is what
# turns a hang into a failure.
# shellcheck source-path=SCRIPTDIR source=cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh" "$@"

# The daemon's pid, from the bus (with-costored keeps it to itself).
daemon_pid=$(dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
  org.freedesktop.DBus.GetConnectionUnixProcessID string:io.github.costore | awk '{print $2}')
if [ -z "$daemon_pid" ]; then echo "$test_name: costored is not on the bus" >&2; exit 1; fi
trap 'kill -CONT "$daemon_pid" 2>/dev/null' EXIT

printf 'stalled' >"$scratch/stalled"
stalled="costored (pid $daemon_pid) stopped answering: no reply to a ping for 2 s"

kill -STOP "$daemon_pid"
expect 9 "$costore" --stall-timeout 2 ls
[[ "$err" == *"$stalled"* ]] || fail "ls: expected '$stalled', got: $err"
expect 9 "$costore" put "$scratch/stalled" --stall-timeout 2
[[ "$err" == *"$stalled"* ]] || fail "put: expected '$stalled', got: $err"
kill -CONT "$daemon_pid"

# Running again, it answers as before.
expect 0 "$costore" put "$scratch/stalled"
expect 0 "$costore" ls

finish
