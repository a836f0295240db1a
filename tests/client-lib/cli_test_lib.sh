# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# cli_test_lib.sh: what the CLI test scripts (cli_test.sh,
# cli_verify_gc_test.sh, cli_consent_test.sh) share. Sourced, first thing,
# with the script's own arguments:
#   source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh" "$@"
# It takes COSTORE (the built `costore`) from $1, checks the environment
# tests/support/with-costored gives (DBUS_SESSION_BUS_ADDRESS,
# COSTORE_TEST_DIR) and COSTORE_SOURCE_DIR, and that the model file and jq
# are there, and sets:
#   test_name     the script's name without .sh, for its messages
#   costore       the CLI; self: its resolved path (the app it runs as)
#   model model_hex model_digest model_size unknown_hex scratch
#   failures fail expect finish (see below)
set -uo pipefail

test_name=$(basename "$0" .sh)
costore=${1:?usage: $test_name.sh PATH-TO-COSTORE}
: "${COSTORE_SOURCE_DIR:?set COSTORE_SOURCE_DIR}"
: "${COSTORE_TEST_DIR:?run me through tests/support/with-costored}"
model=$COSTORE_SOURCE_DIR/../shared/data/models/silero_vad.onnx
model_hex=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
model_digest=sha256:$model_hex
model_size=2327524
unknown_hex=$(printf '0%.0s' {1..64})
scratch=$COSTORE_TEST_DIR
self=$(readlink -f "$costore")

if [ ! -f "$model" ]; then echo "$test_name: the model file $model is missing" >&2; exit 1; fi
if ! command -v jq >/dev/null; then echo "$test_name: jq is needed to check --json output" >&2; exit 1; fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect RC CMD...: runs CMD, keeps its stdout in $out and stderr in $err,
# and fails unless it exits with RC.
expect() {
  local want=$1; shift
  out=$("$@" 2>"$scratch/stderr"); local rc=$?
  err=$(cat "$scratch/stderr")
  if [ "$rc" -ne "$want" ]; then fail "'$*' exited $rc, expected $want; stdout: $out; stderr: $err"; fi
}

# finish: the last line of a script; exits 1 if any check failed.
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$test_name: $failures failure(s)" >&2
    exit 1
  fi
  echo "$test_name: all checks passed"
}
