#!/usr/bin/env bash
# cli_consent_test.sh COSTORE: consent from the command line, against the
# real costored: `forget-site`, `consent` (the settings) and the text-mode
# consent agent `costore agent` (automatic answers, answers typed on its
# standard input, Busy, a withdrawn request). Run through
# tests/support/with-costored (it exports DBUS_SESSION_BUS_ADDRESS and
# COSTORE_TEST_DIR); COSTORE_SOURCE_DIR locates the model file. Needs jq.
#
# That daemon is started without --consent-agent "", so with no agent
# registered it tries to start costore-consent, which is not installed
# here: that fails at once and counts as a refusal. Every agent below is
# therefore registered before the request it is meant to answer. Nothing
# here measures time: waits poll for an outcome, with a cap that only
# turns a hang into a failure.
# shellcheck source-path=SCRIPTDIR source=cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh" "$@"

# Background processes still running at exit are stopped (and waited for:
# a restarted costored must be gone before with-costored removes its store).
background=()
cleanup() {
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  exec 5>&- 2>/dev/null
}
trap cleanup EXIT

# wait_for FILE PATTERN [COUNT]: waits until COUNT lines of FILE match the
# extended regular expression PATTERN.
wait_for() {
  local file=$1 pattern=$2 count=${3:-1}
  for _ in $(seq 1 600); do
    [ "$(grep -cE -- "$pattern" "$file" 2>/dev/null)" -ge "$count" ] && return 0
    sleep 0.05
  done
  fail "gave up waiting for $count line(s) matching '$pattern' in $file:"$'\n'"$(cat "$file")"
  return 1
}

# wait_prompt FILE ORIGIN: waits until the agent logging to FILE shows the
# request of ORIGIN and waits for an answer (its prompt is the last line).
wait_prompt() {
  local file=$1 origin=$2
  wait_for "$file" "site: +$origin\$" || return 1
  for _ in $(seq 1 600); do
    [[ $(tail -n 1 "$file") == "Allow? "* ]] && return 0
    sleep 0.05
  done
  fail "no prompt for $origin in $file:"$'\n'"$(cat "$file")"
  return 1
}

# exit_status PID: waits for the background process PID to exit and sets
# $status to its exit status (-1 if it does not exit).
exit_status() {
  local pid=$1
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; status=$?; return 0; fi
    sleep 0.05
  done
  status=-1
}

# start_agent LOG ARGS...: starts `costore agent ARGS` in the background,
# logging to LOG, and waits until it is registered. Sets $agent.
start_agent() {
  local log=$1; shift
  "$costore" agent "$@" >"$log" 2>&1 </dev/null &
  agent=$!
  background+=("$agent")
  wait_for "$log" "^Registered as the costore consent agent"
}

# get_as ORIGIN [OUTPUT]: reads the model as (this costore, ORIGIN).
get_as() { "$costore" get "$model_hex" --origin "$1" -o "${2:-$scratch/got.onnx}"; }

# --- the command line -----------------------------------------------------------
expect 0 "$costore" --help
for command in forget-site consent agent; do
  grep -q "^  $command" <<<"$out" || fail "--help does not list $command: $out"
done
grep -q "11 another consent agent" <<<"$out" || fail "--help does not list exit status 11"
expect 0 "$costore" agent --help
grep -q -- "--answer" <<<"$out" || fail "agent --help: $out"
expect 1 "$costore" agent --answer maybe
expect 1 "$costore" consent --policy sometimes
expect 1 "$costore" forget-site
expect 9 env DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus "$costore" agent --answer deny
expect 9 env DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus "$costore" consent

# --- consent: the settings round trip through the daemon ---------------------
expect 0 "$costore" consent --json
[ "$(jq -c . <<<"$out")" = '{"consent-policy":"ask","consent-timeout":60,"prompts-per-hour":10}' ] ||
  fail "default settings: $out"
expect 0 "$costore" consent
grep -qE "^policy: +ask " <<<"$out" || fail "consent: $out"
expect 0 "$costore" consent --policy deny --timeout 30 --prompts-per-hour 5 --json
[ "$(jq -c . <<<"$out")" = '{"consent-policy":"deny","consent-timeout":30,"prompts-per-hour":5}' ] ||
  fail "consent --policy deny ... printed $out"
expect 0 "$costore" consent --json   # read back from the daemon
[ "$(jq -c . <<<"$out")" = '{"consent-policy":"deny","consent-timeout":30,"prompts-per-hour":5}' ] ||
  fail "settings not kept: $out"
expect 0 "$costore" consent
grep -qE "^policy: +deny " <<<"$out" || fail "consent: $out"
grep -qE "^timeout: +30 s" <<<"$out" || fail "consent: $out"
expect 5 "$costore" consent --timeout 0
grep -q "consent-timeout" <<<"$err" || fail "a bad timeout's message does not name it: $err"
expect 5 "$costore" consent --prompts-per-hour 3601
expect 0 "$costore" consent --json
[ "$(jq -r '.["consent-timeout"]' <<<"$out")" = 30 ] || fail "a refused setting changed something: $out"

# Policy "deny": a registered agent is not asked, and the read is refused.
expect 0 "$costore" put "$model" --origin https://owner.example
start_agent "$scratch/policy.log" --answer allow-once
expect 2 get_as https://policy.example
kill -TERM "$agent"; exit_status "$agent"
[ "$status" = 0 ] || fail "agent stopped by SIGTERM exited $status"
grep -q "Consent request" "$scratch/policy.log" && fail "policy deny still asked the agent: $(cat "$scratch/policy.log")"
expect 0 "$costore" consent --policy ask --timeout 60 --prompts-per-hour 10

# --- agent --answer allow-once ----------------------------------------------------
start_agent "$scratch/once.log" --answer allow-once
expect 0 get_as https://asker.example "$scratch/asker.onnx"
cmp -s "$model" "$scratch/asker.onnx" || fail "get after allow-once wrote different bytes"
wait_for "$scratch/once.log" "^decision: allow-once"
log=$(cat "$scratch/once.log")
grep -qE "app: +$self\$" <<<"$log" || fail "the agent did not show the app: $log"
grep -qE "site: +https://asker.example\$" <<<"$log" || fail "the agent did not show the origin: $log"
grep -qE "silero_vad.onnx +2.2 MiB +${model_hex:0:12}" <<<"$log" || fail "the agent did not show the file: $log"
grep -qE "https://owner.example +$self +yes" <<<"$log" || fail "the agent did not show the attribution: $log"
expect 0 "$costore" grants --json
[ "$(jq '[.[] | select(.origin == "https://asker.example")] | length' <<<"$out")" = 0 ] ||
  fail "allow-once wrote a grant: $out"

# A second agent while one is registered: Busy, exit 11, whatever its mode.
expect 11 "$costore" agent </dev/null
[[ $err == "costore: agent: another consent agent"* ]] || fail "busy message: $err"
expect 11 "$costore" agent --answer deny
kill -INT "$agent"; exit_status "$agent"
[ "$status" = 0 ] || fail "agent stopped by SIGINT exited $status"
grep -q "^Stopping (interrupted)" "$scratch/once.log" || fail "no stop message: $(cat "$scratch/once.log")"

# --- agent --answer deny ----------------------------------------------------------
start_agent "$scratch/deny.log" --answer deny   # registers: the previous one unregistered
expect 2 get_as https://denied.example "$scratch/denied.onnx"
[ -e "$scratch/denied.onnx" ] && fail "a refused get created its output file"
wait_for "$scratch/deny.log" "^decision: deny"
grep -qE "site: +https://denied.example\$" "$scratch/deny.log" || fail "deny log: $(cat "$scratch/deny.log")"
kill -TERM "$agent"; exit_status "$agent"

# --- agent --once -------------------------------------------------------------------
start_agent "$scratch/only.log" --answer allow-once --once
expect 0 get_as https://only-once.example
exit_status "$agent"
[ "$status" = 0 ] || fail "agent --once exited $status (-1: did not exit)"
[ "$(grep -c "^Consent request" "$scratch/only.log")" = 1 ] || fail "--once log: $(cat "$scratch/only.log")"

# --- the interactive agent, answered through a pipe -----------------------------------
mkfifo "$scratch/agent.in"
"$costore" agent <"$scratch/agent.in" >"$scratch/tty.log" 2>&1 &
agent=$!
background+=("$agent")
exec 5>"$scratch/agent.in"
wait_for "$scratch/tty.log" "^Registered as the costore consent agent"

# Typed before any question: ignored, so it does not answer the next one.
echo o >&5
"$costore" get "$model_hex" --origin https://early.example -o "$scratch/early.onnx" 2>/dev/null &
get=$!
wait_prompt "$scratch/tty.log" https://early.example
echo d >&5
exit_status "$get"
[ "$status" = 2 ] || fail "get answered 'd' exited $status, expected 2 (a line typed before the question answered it?)"
wait_for "$scratch/tty.log" "^decision: deny"

# "a": allow always, a grant appears, and the next read asks nobody.
"$costore" get "$model_hex" --origin https://always.example -o "$scratch/always.onnx" &
get=$!
wait_prompt "$scratch/tty.log" https://always.example
echo a >&5
exit_status "$get"
[ "$status" = 0 ] || fail "get answered 'a' exited $status"
cmp -s "$model" "$scratch/always.onnx" || fail "get after allow-always wrote different bytes"
wait_for "$scratch/tty.log" "^decision: allow-always"
expect 0 "$costore" grants --json
[ "$(jq -r '[.[] | select(.origin == "https://always.example")][0].digest' <<<"$out")" = "$model_digest" ] ||
  fail "allow-always wrote no grant: $out"
[ "$(jq -r '[.[] | select(.origin == "https://always.example")][0].app' <<<"$out")" = "$self" ] ||
  fail "allow-always granted another app: $out"
expect 0 "$costore" grants "$model_hex"
grep -q "https://always.example" <<<"$out" || fail "grants DIGEST: $out"
expect 0 get_as https://always.example
[ "$(grep -c "^Consent request" "$scratch/tty.log")" = 2 ] || fail "a granted read asked again: $(cat "$scratch/tty.log")"

# Something else than o/a/d asks again; then "o" allows once.
"$costore" get "$model_hex" --origin https://typo.example -o "$scratch/typo.onnx" &
get=$!
wait_prompt "$scratch/tty.log" https://typo.example
echo maybe >&5
wait_for "$scratch/tty.log" "^Please answer"
echo o >&5
exit_status "$get"
[ "$status" = 0 ] || fail "get answered 'o' after a typo exited $status"
wait_for "$scratch/tty.log" "^decision: allow-once"

# Cancel: the asking get goes away while the question is shown.
"$costore" get "$model_hex" --origin https://gone.example -o "$scratch/gone.onnx" 2>/dev/null &
get=$!
wait_prompt "$scratch/tty.log" https://gone.example
kill -TERM "$get"
wait "$get" 2>/dev/null
wait_for "$scratch/tty.log" "^Request consent-[0-9]+ was withdrawn"
# The withdrawn question is gone: the next answer goes to the next one.
"$costore" get "$model_hex" --origin https://after.example -o "$scratch/after.onnx" &
get=$!
wait_prompt "$scratch/tty.log" https://after.example
echo o >&5
exit_status "$get"
[ "$status" = 0 ] || fail "the request after a withdrawn one: get exited $status"

# End of input: the agent unregisters and exits 0.
exec 5>&-
exit_status "$agent"
[ "$status" = 0 ] || fail "agent at end of input exited $status"
grep -q "^End of input: stopping." "$scratch/tty.log" || fail "tty log: $(cat "$scratch/tty.log")"
start_agent "$scratch/last.log" --answer deny   # not Busy: the interactive one unregistered
kill -TERM "$agent"; exit_status "$agent"

# --- forget-site ------------------------------------------------------------------------
# site-a stores the model (nobody else's origin does, once owner.example is
# forgotten) and a file site-b stores too; it holds a grant to a file of
# site-b's and has read it.
expect 0 "$costore" forget-site https://owner.example   # the model is now site-a's alone
head -c 100000 /dev/urandom >"$scratch/shared.bin"
head -c 100000 /dev/urandom >"$scratch/b-only.bin"
expect 0 "$costore" put "$model" --origin https://site-a.example
expect 0 "$costore" put "$scratch/shared.bin" --origin https://site-a.example
shared=$out
expect 0 "$costore" put "$scratch/shared.bin" --origin https://site-b.example
expect 0 "$costore" put "$scratch/b-only.bin" --origin https://site-b.example
b_only=$out
expect 0 "$costore" grant "$b_only" --app self --origin https://site-a.example
expect 0 "$costore" get "$b_only" --origin https://site-a.example -o "$scratch/b-only.copy"
expect 0 "$costore" forget-site https://site-a.example --json
[ "$(jq -r .origin <<<"$out")" = https://site-a.example ] || fail "forget-site --json origin: $out"
[ "$(jq -r '.["grants-removed"]' <<<"$out")" = 1 ] || fail "forget-site grants-removed: $out"
[ "$(jq -r '.["files-deleted"]' <<<"$out")" = 1 ] || fail "forget-site files-deleted: $out"
[ "$(jq -r '.["claims-removed"]' <<<"$out")" -ge 2 ] || fail "forget-site claims-removed: $out"
[ "$(jq -c '[.deleted[].digest]' <<<"$out")" = "[\"$model_digest\"]" ] || fail "forget-site deleted: $out"
expect 0 "$costore" ls --json
[ "$(jq -c '[.[].digest] | sort' <<<"$out")" = "$(jq -nc --arg a "$shared" --arg b "$b_only" '[$a, $b] | sort')" ] ||
  fail "forget-site deleted the wrong files: $out"
expect 2 "$costore" info "$model_hex"
expect 0 "$costore" grants --json
[ "$(jq '[.[] | select(.origin == "https://site-a.example")] | length' <<<"$out")" = 0 ] ||
  fail "forget-site left a grant: $out"
expect 0 "$costore" usage --json "$shared"
[ "$(jq -c '[.[].origin]' <<<"$out")" = '["https://site-b.example"]' ] || fail "forget-site left a record: $out"
expect 0 "$costore" usage --json "$b_only"
[ "$(jq -c '[.[].origin]' <<<"$out")" = '["https://site-b.example"]' ] || fail "forget-site left a read record: $out"
# The site is a stranger now: its reads are refused (no agent: no prompt).
expect 2 "$costore" get "$shared" --origin https://site-a.example -o "$scratch/nothing"

# The text form names what was deleted.
expect 0 "$costore" put "$model" --origin https://site-c.example
expect 0 "$costore" forget-site https://site-c.example
grep -qE "files deleted: +1 " <<<"$out" || fail "forget-site: $out"
grep -qE "${model_hex:0:12} +2.2 MiB +silero_vad.onnx" <<<"$out" || fail "forget-site does not list the file: $out"
# Forgetting what the store does not know is not an error.
expect 0 "$costore" forget-site https://site-c.example --json
[ "$(jq -c '[.["grants-removed"], .["claims-removed"], .["files-deleted"]]' <<<"$out")" = '[0,0,0]' ] ||
  fail "forgetting twice: $out"
expect 5 "$costore" forget-site ""
expect 5 "$costore" forget-site "not an origin"

# --- costored restarts: the agent registers again -----------------------------------
start_agent "$scratch/restart.log" --answer allow-once
daemon_pid=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
  org.freedesktop.DBus.GetConnectionUnixProcessID string:io.github.costore | awk '/uint32/ {print $2}')
if [ -n "$daemon_pid" ] && [ -n "${COSTORED:-}" ] && [ -n "${COSTORE_TEST_STORE:-}" ]; then
  kill -TERM "$daemon_pid"
  wait_for "$scratch/restart.log" "^costored went away"
  for _ in $(seq 1 600); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.05; done
  "$COSTORED" --store "$COSTORE_TEST_STORE" 2>>"$scratch/costored-restarted.log" &
  background+=("$!")
  wait_for "$scratch/restart.log" "^costored is back: registered again"
  expect 0 "$costore" put "$model" --origin https://site-d.example
  expect 0 get_as https://after-restart.example
  wait_for "$scratch/restart.log" "site: +https://after-restart.example\$"
else
  fail "cannot find costored's pid (or COSTORED, COSTORE_TEST_STORE) to restart it"
fi
kill -TERM "$agent"; exit_status "$agent"

finish
