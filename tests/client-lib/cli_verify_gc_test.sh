#!/usr/bin/env bash
# cli_verify_gc_test.sh COSTORE: the store's upkeep from the built `costore`
# CLI against the real costored: verify (a file damaged on disk, shown by
# ls, info and space, refused by get, repaired by put), pin/unpin, gc and
# space. Run through tests/support/with-costored (it exports
# DBUS_SESSION_BUS_ADDRESS, COSTORE_TEST_STORE and COSTORE_TEST_DIR);
# COSTORE_SOURCE_DIR locates the model file. Needs jq to read --json output.
# shellcheck source-path=SCRIPTDIR source=cli_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh" "$@"
: "${COSTORE_TEST_STORE:?run me through tests/support/with-costored}"

# json_is FILTER VALUE: the filter applied to $out gives VALUE.
json_is() {
  local got
  got=$(jq -r "$1" <<<"$out" 2>&1)
  [ "$got" = "$2" ] || fail "jq '$1' gave '$got', expected '$2' in: $out"
}

# corrupt HEX: changes one byte of the stored file in place (it is 0444).
corrupt() {
  local blob=$COSTORE_TEST_STORE/blobs/sha256/${1:0:2}/$1 byte new
  [ -f "$blob" ] || { fail "no stored file at $blob"; return; }
  byte=$(dd if="$blob" bs=1 skip=1000 count=1 status=none | od -An -tx1 | tr -d ' ')
  new=X; [ "$byte" = 58 ] && new=Y
  chmod u+w "$blob" && printf '%s' "$new" | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
  chmod 0444 "$blob"
}

# --- usage errors, before any call ---------------------------------------------
expect 1 "$costore" gc
[[ $err == "costore: gc: "* ]] || fail "gc without a limit: $err"
grep -q -- "--to SIZE" <<<"$err" && grep -q -- "--older-than DAYS" <<<"$err" || fail "gc without a limit does not say what to give: $err"
expect 1 "$costore" gc --dry-run
expect 1 "$costore" gc --to 12X
[[ $err == 'costore: gc --to: "12X" is not a size: unknown unit "X"'* ]] || fail "gc --to 12X: $err"
expect 1 "$costore" gc --to -5G
grep -q "negative" <<<"$err" || fail "gc --to -5G: $err"
expect 1 "$costore" gc --older-than soon
expect 1 "$costore" space --min-free lots
[[ $err == 'costore: space --min-free: "lots" is not a size'* ]] || fail "space --min-free lots: $err"
expect 1 "$costore" space --min-free 0
grep -q "auto" <<<"$err" || fail "space --min-free 0 does not mention auto: $err"
expect 1 "$costore" space --quota 0
grep -q "none" <<<"$err" || fail "space --quota 0 does not mention none: $err"
expect 1 "$costore" space --auto-collect maybe
expect 1 "$costore" pin
expect 5 "$costore" pin not-a-digest
[[ $err == "costore: pin: invalid digest"* ]] || fail "pin with a bad digest: $err"
expect 5 "$costore" verify "sha256:${model_hex:0:60}"
# A malformed value changes nothing, even with good ones beside it.
expect 1 "$costore" space --quota 5G --min-free 1.5
expect 0 "$costore" space --json
json_is '.quota' 0

# --- new keys in ls and info ---------------------------------------------------
expect 0 "$costore" put "$model"
head -c 300000 /dev/urandom >"$scratch/random.bin"
random_hex=$(sha256sum "$scratch/random.bin" | cut -d' ' -f1)
expect 0 "$costore" put "$scratch/random.bin"
expect 0 "$costore" ls --json
json_is "[.[] | select(.digest == \"$model_digest\")][0].state" ok
json_is "[.[] | select(.digest == \"$model_digest\")][0].problem" ""
json_is "[.[] | select(.digest == \"$model_digest\")][0].pinned" false
json_is "[.[] | select(.digest == \"$model_digest\")][0] | has(\"last-verified\")" true
expect 0 "$costore" info --json "$model_hex"
json_is .state ok
json_is .pinned false
expect 0 "$costore" info "$model_hex"
grep -qE "^state: +ok$" <<<"$out" || fail "info does not say state ok: $out"
grep -qE "^pinned: +no$" <<<"$out" || fail "info does not say pinned no: $out"

# --- pin, unpin ---------------------------------------------------------------
expect 0 "$costore" pin "$model_hex"
expect 0 "$costore" pin "$model_digest"   # twice is fine
expect 0 "$costore" info "$model_hex"
grep -qE "^pinned: +yes" <<<"$out" || fail "info does not show the pin: $out"
expect 0 "$costore" info --json "$model_hex"
json_is .pinned true
expect 0 "$costore" ls
grep -q "STATE" <<<"$out" || fail "ls has no STATE column with a pinned file: $out"
grep "${model_hex:0:12}" <<<"$out" | grep -q "pinned" || fail "ls does not mark the pinned file: $out"
grep "${random_hex:0:12}" <<<"$out" | grep -q " ok$" || fail "ls does not say ok for the unpinned file: $out"
expect 0 "$costore" ls --json
json_is "[.[] | select(.digest == \"$model_digest\")][0].pinned" true
expect 2 "$costore" pin "$unknown_hex"
[[ $err == "costore: pin sha256:$unknown_hex: "* ]] || fail "pin of an unknown file: $err"
expect 2 "$costore" unpin "$unknown_hex"
expect 0 "$costore" space --json
json_is .pinned 1
json_is .files 2

# --- gc -----------------------------------------------------------------------
expect 0 "$costore" gc --to 0 --dry-run
grep -q "Dry run" <<<"$out" && grep -q "would delete 1 file," <<<"$out" || fail "gc --dry-run: $out"
grep -q "293 KiB" <<<"$out" || fail "gc --dry-run does not give the size in human units: $out"
grep -q "Nothing was deleted" <<<"$out" || fail "gc --dry-run: $out"
grep -q "${random_hex:0:12}" <<<"$out" || fail "gc --dry-run does not name the file: $out"
grep -q "${model_hex:0:12}" <<<"$out" && fail "gc --dry-run would delete the pinned file: $out"
expect 0 "$costore" gc --to 0 --dry-run --json
json_is '."dry-run"' true
json_is '."files-deleted"' 1
json_is '.digests | join(",")' "sha256:$random_hex"
json_is '."bytes-freed" >= 300000' true
expect 0 "$costore" info "$random_hex"   # still there
expect 0 "$costore" gc --to 0
grep -q "Collected 1 file, 293 KiB freed" <<<"$out" || fail "gc --to 0: $out"
grep -q "random.bin" <<<"$out" || fail "gc does not name what it deleted: $out"
expect 2 "$costore" info "$random_hex"
expect 0 "$costore" info "$model_hex"
expect 0 "$costore" gc --to 0 --json
json_is '."files-deleted"' 0
json_is '."store-bytes" >= '"$model_size" true
expect 0 "$costore" gc --to 0
grep -q "Nothing to collect" <<<"$out" || fail "gc with nothing to collect: $out"

# By age: a file just stored is not unused for a day; for no time at all, it is.
expect 0 "$costore" put "$scratch/random.bin"
expect 0 "$costore" gc --older-than 1
expect 0 "$costore" info "$random_hex"
expect 0 "$costore" gc --older-than 0
expect 2 "$costore" info "$random_hex"

expect 0 "$costore" unpin "$model_hex"
expect 0 "$costore" info --json "$model_hex"
json_is .pinned false
expect 0 "$costore" gc --to 0
expect 2 "$costore" info "$model_hex"

# --- verify -------------------------------------------------------------------
expect 0 "$costore" verify
grep -q "nothing to verify" <<<"$out" || fail "verify of an empty store: $out"
expect 0 "$costore" put "$model"
expect 0 "$costore" put "$scratch/random.bin"
expect 0 "$costore" verify
grep -E "^ok +$model_digest +2.2 MiB +silero_vad.onnx" <<<"$out" >/dev/null || fail "verify line for the model: $out"
grep -q "Verified 2 entries" <<<"$out" && grep -q "2 ok, 0 damaged, 0 absent" <<<"$out" || fail "verify summary: $out"
expect 0 "$costore" verify "$model_hex"
grep -q "Verified 1 entry" <<<"$out" || fail "verify DIGEST: $out"
expect 2 "$costore" verify "$model_hex" "$unknown_hex"
grep -qE "^absent +sha256:$unknown_hex" <<<"$out" || fail "verify of an unknown digest: $out"
grep -q "1 ok, 0 damaged, 1 absent" <<<"$out" || fail "verify summary with an absent digest: $out"
expect 0 "$costore" verify --json
json_is 'length' 2
json_is "[.[] | select(.digest == \"$model_digest\")][0].state" ok
json_is "[.[] | select(.digest == \"$model_digest\")][0].size" "$model_size"
json_is "[.[] | select(.digest == \"$model_digest\")][0].private" false

corrupt "$model_hex"
expect 12 "$costore" verify
grep -qE "^damaged +$model_digest" <<<"$out" || fail "verify does not show the damaged file: $out"
grep -q "1 ok, 1 damaged, 0 absent" <<<"$out" || fail "verify summary with a damaged file: $out"
grep -q "repairs it" <<<"$out" || fail "verify does not say how to repair: $out"
expect 12 "$costore" verify --json "$model_hex"
json_is '.[0].state' damaged
json_is '.[0].problem | length > 0' true
expect 12 "$costore" verify "$model_hex" "$unknown_hex"   # damaged outranks absent
expect 0 "$costore" verify "$random_hex"
expect 0 "$costore" ls
grep "${model_hex:0:12}" <<<"$out" | grep -q "damaged: ." || fail "ls does not show the damaged file and its problem: $out"
grep -q "1 entry is damaged" <<<"$out" || fail "ls has no note of the damaged file: $out"
expect 0 "$costore" ls --json
json_is "[.[] | select(.digest == \"$model_digest\")][0].state" damaged
json_is "[.[] | select(.digest == \"$model_digest\")][0].problem | length > 0" true
expect 0 "$costore" info "$model_hex"
grep -qE "^state: +damaged: ." <<<"$out" || fail "info does not show the damage: $out"
expect 0 "$costore" info --json "$model_hex"
json_is .state damaged
expect 2 "$costore" get "$model_hex" -o "$scratch/damaged.onnx"
grep -q "damaged" <<<"$err" || fail "get of a damaged file does not say so: $err"
[ -e "$scratch/damaged.onnx" ] && fail "get of a damaged file wrote its output"
expect 0 "$costore" space --json
json_is .damaged 1
expect 0 "$costore" space
grep -qE "^damaged: +1 " <<<"$out" || fail "space does not count the damaged file: $out"

# Storing the right bytes repairs it.
expect 0 "$costore" put "$model"
expect 0 "$costore" verify
expect 0 "$costore" get "$model_hex" -o "$scratch/repaired.onnx"
cmp -s "$model" "$scratch/repaired.onnx" || fail "the repaired file reads back different bytes"
expect 0 "$costore" info --json "$model_hex"
json_is .state ok
json_is '."last-verified" > 0' true

# --- space ----------------------------------------------------------------------
expect 0 "$costore" space
for line in store files damaged pinned free floor quota auto-collect scrub "store rate" "last scrub"; do
  grep -qE "^$line: " <<<"$out" || fail "space has no '$line:' line: $out"
done
grep -qE "^quota: +none$" <<<"$out" || fail "space with no quota: $out"
grep -qE "^floor: .*automatic" <<<"$out" || fail "space does not say the floor is automatic: $out"
grep -qE "^last scrub: +never$" <<<"$out" || fail "space: last scrub: $out"
grep -qE "^store rate: +at least 1.0 MiB/s " <<<"$out" || fail "space: store rate: $out"
expect 0 "$costore" space --json
json_is '."min-store-rate"' 1048576
expect 0 "$costore" space --min-store-rate off
grep -qE "^store rate: +no minimum$" <<<"$out" || fail "space --min-store-rate off: $out"
expect 0 "$costore" space --min-store-rate 64K --json
json_is '."min-store-rate"' 65536
expect 1 "$costore" space --min-store-rate fast
[[ $err == 'costore: space --min-store-rate: "fast" is not a size'* ]] || fail "space --min-store-rate fast: $err"
expect 0 "$costore" space --min-store-rate 1M
expect 0 "$costore" space --json
json_is .files 2
json_is '."store-bytes" >= '"$((model_size + 300000))" true
json_is '."free-bytes" > 0' true
json_is '."floor-bytes" > 0' true
json_is '."quota-bytes"' 0
json_is '."last-scrub"' 0

expect 0 "$costore" space --min-free 1G --quota 1.5GiB --auto-collect on --scrub-interval 7
grep -qE "^floor: +1.0 GiB always left free$" <<<"$out" || fail "space --min-free 1G: $out"
grep -qE "^quota: +1.5 GiB \(" <<<"$out" || fail "space --quota 1.5GiB: $out"
grep -qE "^auto-collect: +on" <<<"$out" || fail "space --auto-collect on: $out"
grep -qE "^scrub: +every 7 days" <<<"$out" || fail "space --scrub-interval 7: $out"
expect 0 "$costore" space --json
json_is '."min-free-space"' 1073741824
json_is '."floor-bytes"' 1073741824
json_is .quota 1610612736
json_is '."quota-bytes"' 1610612736
json_is '."auto-collect"' true
json_is '."scrub-interval"' 7

# The quota refuses a store past it (exit 7) unless auto-collect makes room.
expect 0 "$costore" space --auto-collect off --quota "$(($(jq '."store-bytes"' <<<"$out") + 1000))"
head -c 200000 /dev/urandom >"$scratch/extra.bin"
expect 7 "$costore" put "$scratch/extra.bin"
[[ $err == "costore: put $scratch/extra.bin: "* ]] || fail "quota refusal message: $err"

expect 0 "$costore" space --min-free auto --quota none --auto-collect off --scrub-interval 0
grep -qE "^quota: +none$" <<<"$out" || fail "space --quota none: $out"
grep -qE "^scrub: +off$" <<<"$out" || fail "space --scrub-interval 0: $out"
expect 0 "$costore" space --json
json_is '."min-free-space"' 0
json_is .quota 0
json_is '."auto-collect"' false
json_is '."scrub-interval"' 0
expect 0 "$costore" put "$scratch/extra.bin"

finish
