#!/usr/bin/env bash
# Smoke test of a frozen Hearth folder (packaging/linux/build.sh runs it on what it built), as a
# user would meet it, every step inside a network namespace with no network (`unshare -rn`):
# --version, doctor, an answer from the bundled model, documents added, searched and asked, a
# scanned PDF read by OCR,
# the model catalog searched, a download refused by machine policy (quoting its reason), the
# window up offscreen for 10 s, and nothing in the network log.
#   packaging/linux/smoke.sh FROZEN_DIR
# A failing step prints its command and its whole output, then the test stops with exit 1.
# HEARTH_EXPECT_PORTABLE=1 (build.sh sets it for a release) also requires llama.cpp's CPU
# kernels to be chosen at run time. HEARTH_EXPECT_MODULES="cuda vulkan" (what build_llama.sh
# was asked for) requires each ggml module in the folder, and the Vulkan one to load (on Mesa's
# software device where there is no GPU: llama.cpp uses it only when GGML_VK_VISIBLE_DEVICES
# names it).
#
# The namespace maps this user to root inside it, which is what lets HEARTH_POLICY add the
# test policy (engine/policy.py honours it only for root); the machine's own policy, if any,
# is still read and wins.
set -euo pipefail
APP=$(cd "$1" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HEARTH_HOME="$WORK/home"
# The app's own offline behaviour is under test, not the caller's: scripts/test exports
# HF_HUB_OFFLINE=1, which would answer the policy step before the policy does.
unset HEARTH_POLICY HF_HUB_OFFLINE
STEPS=0

fail() {  # fail NAME WHY: print the step's output and stop
    echo "smoke test FAILED at step '$1': $2" >&2
    [ -f "$WORK/$1.out" ] && sed 's/^/    /' "$WORK/$1.out" >&2
    exit 1
}
step() {  # step NAME COMMAND...: run offline; output kept in $WORK/NAME.out
    local name=$1; shift
    STEPS=$((STEPS + 1))
    echo "-- $name: $*" | sed "s|$APP/||g"
    unshare -rn "$@" > "$WORK/$name.out" 2>&1 || fail "$name" "exit $? from: $*"
}
expect() {  # expect NAME EXTENDED-REGEX: the step's output must match
    grep -qiE -- "$2" "$WORK/$1.out" || fail "$1" "output does not match /$2/"
}

step version "$APP/hearth" --version
expect version "^hearth [0-9]"

step doctor "$APP/hearth" doctor --no-hash
expect doctor "network guard: on"
expect doctor "analytics or crash-reporting packages: none"
expect doctor "^Machine policy:"
# The embedder runs on the export shipped with the build; torch is not in the bundle.
expect doctor "embedder: runs on onnxruntime, float32, on the ONNX export shipped"
step doctor-hashes "$APP/hearth" doctor
expect doctor-hashes "sha256 of onnx/model.onnx \(exported from model.safetensors\): [0-9a-f]{64}  \(matches"
[ ! -e "$APP/_internal/torch" ] || fail doctor "torch is in the bundle"
grep -E "CPU kernels|dispatch" "$WORK/doctor.out" || true
if [ "${HEARTH_EXPECT_PORTABLE:-0}" = 1 ]; then
    expect doctor "runtime dispatch"
fi
for module in ${HEARTH_EXPECT_MODULES:-}; do
    find "$APP" -name "libggml-$module.so" | grep -q . \
        || { echo "smoke test FAILED: no ggml $module module in $APP" >&2; exit 1; }
done
if [[ " ${HEARTH_EXPECT_MODULES:-} " == *" vulkan "* ]]; then
    step vulkan env GGML_VK_VISIBLE_DEVICES=0 "$APP/hearth" doctor --no-hash
    expect vulkan "device Vulkan0"
fi

# llama.cpp proven on this CPU before anything else uses it (engine/runtime/selftest.py): the
# bundled model answers the capital question greedily, fast and plain kernels score the same.
# Each run's record goes to HEARTH_SMOKE_RECORDS (build.sh puts them in BUILD-INFO.json).
RECORDS=${HEARTH_SMOKE_RECORDS:-$WORK/records}
mkdir -p "$RECORDS"
selftest() {  # selftest NAME [ENV=VALUE...] [PREFIX...]: the self-test, recorded as NAME
    local name=$1; shift
    step "selftest-$name" env "$@" "$APP/hearth" selftest --record "$RECORDS/selftest-$name.json" \
        ${SELFTEST_ONLY:+--only "$SELFTEST_ONLY"}
    expect "selftest-$name" "self-test passed"
}
selftest host HEARTH_SELFTEST_AS=host
if [ "${HEARTH_EXPECT_PORTABLE:-0}" = 1 ]; then
    # A portable build: every CPU variant this host can run, forced one at a time, then the
    # build as a whole on emulated older CPUs (QEMU user mode; the workers are started under
    # it too, HEARTH_WORKER_PREFIX). A variant that crashes or answers wrong fails the build.
    variants=$("$APP/hearth" doctor --json --no-hash | python3 -c \
        "import json, sys; print(' '.join(json.load(sys.stdin)['cpu']['llama_cpp']['variants_here']))")
    [ -n "$variants" ] || { echo "smoke test FAILED: no CPU variant runs on this host" >&2; exit 1; }
    for variant in $variants; do
        selftest "variant-$variant" HEARTH_GGML_CPU_VARIANT="$variant" HEARTH_SELFTEST_AS="variant $variant"
    done
    command -v qemu-x86_64 >/dev/null || { echo "smoke test FAILED: no qemu-x86_64 (Debian's qemu-user) to run older CPUs" >&2; exit 1; }
    # Emulation is about 100x slower: the answer only (under a minute for Nehalem here); the
    # kernels check, half an hour a CPU emulated, ran on each variant natively above. Nehalem
    # (x86-64-v2) is the floor: NumPy 2.4, which the app imports, needs SSE4.2 and POPCNT and
    # dies of an illegal instruction on QEMU's qemu64 (x86-64-v1) before llama.cpp loads.
    for cpu in ${HEARTH_EMULATED_CPUS:-Haswell Nehalem}; do
        SELFTEST_ONLY=answer selftest "emulated-$cpu" HEARTH_SELFTEST_AS="emulated $cpu" \
            HEARTH_SELFTEST_TIMEOUT_S=1800 HEARTH_WORKER_PREFIX="qemu-x86_64 -cpu $cpu" \
            qemu-x86_64 -cpu "$cpu"
    done
fi

# "Answer in one word": the 135M model's greedy answer to the bare question differs between
# ggml's CPU variants (AVX2 kernels round differently from AVX-512 ones; perplexity is the same),
# and this smoke test runs on whatever CPU the build machine has.
step ask "$APP/hearth" ask --temperature 0 --max-tokens 16 \
    "What is the capital of France? Answer in one word."
expect ask "paris"

mkdir "$WORK/docs"
printf 'The lighthouse keeper on Cape Verity is named Odile Marchand.\n' > "$WORK/docs/keeper.txt"
printf 'The ferry to Cape Verity leaves at dawn on Tuesdays.\n' > "$WORK/docs/ferry.txt"
step docs-add "$APP/hearth" docs add keepers "$WORK/docs"
step docs-search "$APP/hearth" docs search keepers "who keeps the lighthouse"
expect docs-search "keeper\.txt"
step ask-docs "$APP/hearth" ask --docs keepers --temperature 0 --max-tokens 24 \
    "Who keeps the lighthouse on Cape Verity?"
expect ask-docs "keeper\.txt"
# A scanned page (an image, no text layer: made by tests/doc_files.py's scan_page at 150 dpi,
# turned 1.5 degrees): the OCR models and onnxruntime must be in the folder and load.
mkdir "$WORK/scans"
cp "$(dirname "$0")/smoke-scan.pdf" "$WORK/scans/"
step docs-ocr "$APP/hearth" docs add scans "$WORK/scans"
step docs-ocr-search "$APP/hearth" docs search scans "who is the harbour master"
expect docs-ocr-search "smoke-scan\.pdf \(page 1 .+ OCR\)"
expect docs-ocr-search "Tobias Renner"

step models-search "$APP/hearth" models search qwen
expect models-search "qwen2\.5"

printf '{"reason": "Smoke test policy (ticket 42)", "settings": {"downloads.allowed": false}}\n' \
    > "$WORK/policy.json"
STEPS=$((STEPS + 1))
echo "-- policy-refusal: hearth models download (under a policy that forbids it)"
if unshare -rn env HEARTH_POLICY="$WORK/policy.json" "$APP/hearth" models download \
    qwen2.5-0.5b-instruct-q4_k_m > "$WORK/policy-refusal.out" 2>&1; then
    fail policy-refusal "the download was not refused"
fi
expect policy-refusal "turned model downloads off.*ticket 42"

step window-probe env QT_QPA_PLATFORM=offscreen HEARTH_STARTUP_PROBE=1 \
    HEARTH_HOME="$WORK/gui" timeout 60 "$APP/hearth-gui"
expect window-probe "^interactive"
# The window stays up: still running after 10 s (timeout's 124), no traceback.
STEPS=$((STEPS + 1))
echo "-- window: hearth-gui for 10 s"
rc=0
unshare -rn env QT_QPA_PLATFORM=offscreen HEARTH_HOME="$WORK/gui" \
    timeout 10 "$APP/hearth-gui" > "$WORK/window.out" 2>&1 || rc=$?
[ $rc = 124 ] || fail window "the window exited with $rc within 10 s"
if grep -qE "Traceback|Error" "$WORK/window.out"; then fail window "errors in its output"; fi

for log in "$HEARTH_HOME/logs/egress.jsonl" "$WORK/gui/logs/egress.jsonl"; do
    if [ -s "$log" ]; then
        echo "smoke test FAILED: network attempts were recorded in $log:" >&2
        cat "$log" >&2
        exit 1
    fi
done
echo "smoke test passed: $STEPS steps offline (version, doctor, llama.cpp self-tests, ask, documents add/search/ask," \
     "a scanned PDF by OCR, models search, policy refusal, window 10 s), no network attempts"
