#!/usr/bin/env bash
# The libFuzzer targets of loom-fuzz, one per parser of untrusted bytes.
#   scripts/fuzz.sh seed           fill each target's corpus from the test fixtures and datasets
#   scripts/fuzz.sh run [SECONDS]  fuzz every target for SECONDS (default 60) each
#   scripts/fuzz.sh replay         run every target over its corpus and the kept crash inputs once
# Built by `make fuzz-build` (ASan + libFuzzer, into .build-fuzz). A crash is written to
# Tests/Fuzz/Crashes/<target>-crash-<sha1>: fix it and keep the file, which replay then runs.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=.build-fuzz/debug/loom-fuzz
targets=(png jpeg csv gzip npy idx keras config hdf5 job)
corpus=.build-fuzz/corpus
crashes=Tests/Fuzz/Crashes
export SWIFT_BACKTRACE=enable=no
# The Swift runtime's caches look like leaks. A corrupt file must not make a parser ask malloc
# for absurd sizes; should a C library do so, glibc returns NULL and it reports an error, so
# ASan is told to do as glibc does.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1

seed() {
    local target=$1 dir=$corpus/$1
    mkdir -p "$dir"
    local found=()
    case $target in
        png) mapfile -t found < <(find Tests datasets -name '*.png' -size -200k) ;;
        jpeg) mapfile -t found < <(find Tests datasets -name '*.jpg' -size -200k) ;;
        csv) mapfile -t found < <(find Tests datasets -name '*.csv' -size -100k) ;;
        gzip) mapfile -t found < <(find Tests datasets -name '*.gz' -size -200k) ;;
        npy) mapfile -t found < <(find Tests -name '*.npy' -size -50k | sort | head -40) ;;
        # The first bytes of MNIST's test files (head closes the pipe early, which gunzip minds).
        idx) { gunzip -c datasets/mnist/t10k-labels-idx1-ubyte.gz | head -c 2000 > "$dir/labels.idx"; } || true
             { gunzip -c datasets/mnist/t10k-images-idx3-ubyte.gz | head -c 4000 > "$dir/images.idx"; } || true ;;
        keras) mapfile -t found < <(find Tests -name '*.keras' -size -100k | sort | head -40) ;;
        config) local k=0
                for f in $(find Tests -name '*.keras' -size -100k | sort | head -40); do
                    unzip -p "$f" config.json > "$dir/config-$k.json" 2>/dev/null || rm -f "$dir/config-$k.json"; k=$((k + 1))
                done ;;
        hdf5) mapfile -t found < <(find Tests -name '*.h5' -size -100k)
              local k=0
              for f in $(find Tests -name '*.keras' -size -100k | sort | head -10); do
                  unzip -p "$f" model.weights.h5 > "$dir/weights-$k.h5" 2>/dev/null || rm -f "$dir/weights-$k.h5"; k=$((k + 1))
              done ;;
        job) mapfile -t found < <(find datasets/jobs -name '*.yaml') ;;
    esac
    for f in "${found[@]}"; do cp "$f" "$dir/$(echo "$f" | tr '/' '_')"; done
}

case ${1:-} in
    seed) for t in "${targets[@]}"; do seed "$t"; done ;;
    run)
        seconds=${2:-60}
        mkdir -p "$crashes"
        for t in "${targets[@]}"; do
            [ -d "$corpus/$t" ] || seed "$t"
            echo "fuzzing $t for ${seconds}s"
            LOOM_FUZZ_TARGET=$t "$binary" "$corpus/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
                -rss_limit_mb=4096 -artifact_prefix="$crashes/$t-" -print_final_stats=1 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|Done)' || true
        done ;;
    replay)
        for t in "${targets[@]}"; do
            [ -d "$corpus/$t" ] || seed "$t"
            log=$(mktemp)
            LOOM_FUZZ_TARGET=$t "$binary" -runs=0 "$corpus/$t" > "$log" 2>&1 || {
                cat "$log" >&2; rm -f "$log"; echo "loom-fuzz $t: failed on its corpus" >&2; exit 1; }
            # Without coverage counters in the Swift code libFuzzer mutates blind (seen: a build
            # whose counters came from the C shims alone, about 5,000).
            counters=$(sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
            if [ "${counters:-0}" -lt 50000 ]; then
                cat "$log" >&2; rm -f "$log"; echo "loom-fuzz: only ${counters:-0} coverage counters: the Swift code is not instrumented" >&2; exit 1
            fi
            # libFuzzer takes either folders (a corpus) or files (each run once), not both at once.
            kept=()
            for c in "$crashes/$t"-*; do [ -e "$c" ] && kept+=("$c"); done
            if [ ${#kept[@]} -gt 0 ]; then
                LOOM_FUZZ_TARGET=$t "$binary" "${kept[@]}" > "$log" 2>&1 || {
                    cat "$log" >&2; rm -f "$log"; echo "loom-fuzz $t: failed on a kept crash input" >&2; exit 1; }
            fi
            rm -f "$log"
            echo "loom-fuzz $t: $(ls "$corpus/$t" | wc -l) corpus and ${#kept[@]} kept crash input(s) replayed, no crash"
        done ;;
    *) echo "usage: scripts/fuzz.sh seed | run [SECONDS] | replay" >&2; exit 2 ;;
esac
