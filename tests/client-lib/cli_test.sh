#!/usr/bin/env bash
# cli_test.sh COSTORE: drives the built `costore` CLI against the real
# costored. Run through tests/support/with-costored (it exports
# DBUS_SESSION_BUS_ADDRESS and COSTORE_TEST_DIR); COSTORE_SOURCE_DIR locates
# the model file. Needs jq to read --json output.
# shellcheck source-path=SCRIPTDIR source=cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh" "$@"

# --- no daemon needed -------------------------------------------------------
expect 0 "$costore" --version
[[ $out == "costore "[0-9]* ]] || fail "--version printed '$out'"
expect 0 "$costore" --help
grep -q "Exit status" <<<"$out" || fail "--help has no exit status footer"
expect 1 "$costore"
expect 1 "$costore" frobnicate
expect 1 "$costore" get
expect 9 env DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus "$costore" ls
[[ $err == "costore: "* ]] || fail "unreachable error not in 'costore: ...' form: $err"

# A bus without costored on it (and nothing to activate) is exit 9 as well.
mkdir -p "$scratch/empty-bus"
cat >"$scratch/empty-bus/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=$scratch/empty-bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
exec 4< <(dbus-daemon --config-file="$scratch/empty-bus/bus.conf" --nofork --print-address=1 2>/dev/null)
empty_bus_pid=$!
read -r empty_bus_address <&4
expect 9 env DBUS_SESSION_BUS_ADDRESS="$empty_bus_address" "$costore" info "$model_hex"
[[ $err == "costore: info $model_digest: costored is not reachable: "* ]] || fail "no-daemon message: $err"
kill "$empty_bus_pid" 2>/dev/null
exec 4<&-

# --- put prints the digest; get round-trips ---------------------------------
expect 0 "$costore" put "$model"
[ "$out" = "$model_digest" ] || fail "put printed '$out'"
expect 0 "$costore" get "$model_hex" -o "$scratch/copy.onnx"   # bare hex
cmp -s "$model" "$scratch/copy.onnx" || fail "get -o wrote different bytes"
"$costore" get "$model_digest" | cmp -s "$model" - || fail "get to stdout wrote different bytes"
expect 0 "$costore" get "SHA256:${model_hex^^}" -o "$scratch/copy2.onnx"   # any case
cmp -s "$model" "$scratch/copy2.onnx" || fail "get with an uppercase digest"
ls -a "$scratch" | grep -q costore- && fail "get left a temporary file behind"

# --- ls / info ----------------------------------------------------------------
expect 0 "$costore" ls --json
[ "$(jq length <<<"$out")" = 1 ] || fail "ls --json: $out"
[ "$(jq -r '.[0].digest' <<<"$out")" = "$model_digest" ] || fail "ls --json digest: $out"
[ "$(jq -r '.[0].size' <<<"$out")" = "$model_size" ] || fail "ls --json size: $out"
[ "$(jq -r '.[0].name' <<<"$out")" = "silero_vad.onnx" ] || fail "ls --json name: $out"
[ "$(jq -r '.[0]["stored-by"]' <<<"$out")" = 1 ] || fail "ls --json stored-by: $out"
expect 0 "$costore" ls
grep -q "${model_hex:0:12}" <<<"$out" || fail "ls does not show the short digest: $out"
grep -q "2.2 MiB" <<<"$out" || fail "ls does not show a human size: $out"
expect 0 "$costore" info "$model_hex"
grep -q "$model_digest" <<<"$out" || fail "info: $out"
expect 0 "$costore" info --json "$model_digest"
[ "$(jq -r .size <<<"$out")" = "$model_size" ] || fail "info --json: $out"

# --- errors and exit codes ----------------------------------------------------
expect 2 "$costore" get "$unknown_hex" -o "$scratch/nothing"
[[ $err == "costore: get sha256:$unknown_hex: "* ]] || fail "not-found message: $err"
[ -e "$scratch/nothing" ] && fail "a failed get created its output file"
expect 2 "$costore" info "$unknown_hex"
expect 5 "$costore" get not-a-digest
[[ $err == "costore: get: invalid digest"* ]] || fail "invalid digest message: $err"
expect 5 "$costore" info "sha256:${model_hex:0:60}"
expect 5 "$costore" put "$model" --origin "https://Not An Origin/"
expect 10 "$costore" put "$scratch/does-not-exist"
expect 4 "$costore" put "$model" --size $((model_size - 1))
expect 4 "$costore" put "$model" --digest "sha256:$unknown_hex"
grep -q "$model_hex" <<<"$err" || fail "mismatch message does not name what arrived: $err"

# --- standard input -----------------------------------------------------------
head -c 300000 /dev/urandom >"$scratch/random.bin"
random_digest=sha256:$(sha256sum "$scratch/random.bin" | cut -d' ' -f1)
out=$(cat "$scratch/random.bin" | "$costore" put - --name random.bin) || fail "put - (spooled) failed"
[ "$out" = "$random_digest" ] || fail "put - printed '$out', expected $random_digest"
out=$(cat "$scratch/random.bin" | "$costore" put - --digest "$random_digest") || fail "put - --digest failed"
[ "$out" = "$random_digest" ] || fail "put - --digest printed '$out'"
out=$("$costore" put - <"$scratch/random.bin") || fail "put - from a redirected file failed"
[ "$out" = "$random_digest" ] || fail "put - <file printed '$out'"
echo "not the model" | "$costore" put - --digest "$model_digest" 2>/dev/null
[ $? -eq 4 ] || fail "put - with the wrong digest did not exit 4"
expect 0 "$costore" ls --json
[ "$(jq length <<<"$out")" = 2 ] || fail "a failed put stored something: $out"

# --- another origin, grants ---------------------------------------------------
expect 2 "$costore" get "$model_hex" --origin https://b.example -o "$scratch/b.onnx"
expect 0 "$costore" grant "$model_hex" --app self --origin https://b.example
expect 0 "$costore" grants --json
[ "$(jq -r --arg app "$self" '[.[] | select(.app == $app and .origin == "https://b.example")] | length' <<<"$out")" = 1 ] ||
  fail "grants --json: $out"
expect 0 "$costore" grants "$model_hex"
grep -q "https://b.example" <<<"$out" || fail "grants: $out"
expect 0 "$costore" get "$model_hex" --origin https://b.example -o "$scratch/b.onnx"
cmp -s "$model" "$scratch/b.onnx" || fail "get as a granted origin wrote different bytes"
expect 0 "$costore" revoke "$model_hex" --app self --origin https://b.example
expect 2 "$costore" revoke "$model_hex" --app self --origin https://b.example
expect 2 "$costore" get "$model_hex" --origin https://b.example -o "$scratch/b.onnx"
expect 0 "$costore" grant '*' --app "$self" --origin https://c.example
expect 0 "$costore" get "$random_digest" --origin https://c.example -o "$scratch/c.bin"
cmp -s "$scratch/random.bin" "$scratch/c.bin" || fail "get under a '*' grant wrote different bytes"
expect 0 "$costore" revoke '*' --app "$self" --origin https://c.example
expect 5 "$costore" grant nope --app self

# --- usage, rm ----------------------------------------------------------------
expect 0 "$costore" usage --json "$model_hex"
[ "$(jq -r '.[0].app' <<<"$out")" = "$self" ] || fail "usage --json app: $out"
[ "$(jq -r '.[0].stored' <<<"$out")" = true ] || fail "usage --json stored: $out"
[ "$(jq -r '[.[] | select(.origin == "https://b.example")][0].reads' <<<"$out")" = 1 ] || fail "usage reads: $out"
expect 0 "$costore" usage "$model_hex"
grep -q "https://b.example" <<<"$out" || fail "usage: $out"
expect 0 "$costore" rm "$model_hex"
expect 2 "$costore" info "$model_hex"
expect 2 "$costore" rm "$model_hex"
expect 0 "$costore" ls --json
[ "$(jq length <<<"$out")" = 1 ] || fail "rm left the file listed: $out"

finish
