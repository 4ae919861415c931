#!/usr/bin/env bash
# Smoke test of a frozen Hearth folder (packaging/linux/build.sh runs it on what it built):
# --version, doctor, an answer from the bundled model inside a network namespace with no
# network, documents indexed and asked, and the window started offscreen.
#   packaging/linux/smoke.sh FROZEN_DIR
# HEARTH_EXPECT_PORTABLE=1 (build.sh sets it for a release) also requires llama.cpp's CPU
# kernels to be chosen at run time, and reports which variant this CPU got.
set -euo pipefail
APP=$(cd "$1" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HEARTH_HOME="$WORK/home" HEARTH_POLICY="$WORK/no-policy.json"
offline() { unshare -rn "$@"; }

"$APP/hearth" --version
"$APP/hearth" doctor --no-hash > "$WORK/doctor.txt" || { cat "$WORK/doctor.txt"; exit 1; }
grep -q "network guard: on" "$WORK/doctor.txt"
grep -q "analytics or crash-reporting packages: none" "$WORK/doctor.txt"
grep -E "CPU kernels|dispatch" "$WORK/doctor.txt" || true
if [ "${HEARTH_EXPECT_PORTABLE:-0}" = 1 ]; then
    grep -q "runtime dispatch" "$WORK/doctor.txt" \
        || { echo "smoke test FAILED: llama.cpp is not the portable build" >&2; exit 1; }
fi

# HEARTH_EXPECT_MODULES="cuda vulkan" (what build_llama.sh was asked for): each ggml module
# must be in the folder, and the Vulkan one must load (on Mesa's software device, which
# llama.cpp uses only when GGML_VK_VISIBLE_DEVICES names it, where there is no GPU).
for module in ${HEARTH_EXPECT_MODULES:-}; do
    find "$APP" -name "libggml-$module.so" | grep -q . \
        || { echo "smoke test FAILED: no ggml $module module in $APP" >&2; exit 1; }
done
if [[ " ${HEARTH_EXPECT_MODULES:-} " == *" vulkan "* ]]; then
    GGML_VK_VISIBLE_DEVICES=0 "$APP/hearth" doctor --no-hash | grep -q "Vulkan" \
        || { echo "smoke test FAILED: the Vulkan module did not load" >&2; exit 1; }
fi

# "Answer in one word": the 135M model's greedy answer to the bare question differs between
# ggml's CPU variants (AVX2 kernels round differently from AVX-512 ones; perplexity is the same),
# and this smoke test runs on whatever CPU the build machine has.
answer=$(offline "$APP/hearth" ask --temperature 0 --max-tokens 16 \
    "What is the capital of France? Answer in one word.")
echo "ask: $answer"
grep -qi "paris" <<<"$answer"

mkdir "$WORK/docs"
printf 'The lighthouse keeper on Cape Verity is named Odile Marchand.\n' > "$WORK/docs/keeper.txt"
offline "$APP/hearth" docs add keepers "$WORK/docs" >/dev/null 2>&1
sourced=$(offline "$APP/hearth" ask --docs keepers --temperature 0 --max-tokens 24 \
    "Who keeps the lighthouse on Cape Verity?")
grep -q "keeper.txt" <<<"$sourced"

QT_QPA_PLATFORM=offscreen HEARTH_STARTUP_PROBE=1 HEARTH_HOME="$WORK/gui" \
    timeout 60 "$APP/hearth-gui" > "$WORK/gui.txt" 2>&1
grep -q "^interactive" "$WORK/gui.txt"

if [ -s "$HEARTH_HOME/logs/egress.jsonl" ]; then
    echo "smoke test FAILED: network attempts were recorded:" >&2
    cat "$HEARTH_HOME/logs/egress.jsonl" >&2
    exit 1
fi
echo "smoke test passed: version, doctor, ask offline, documents offline, window offscreen"
