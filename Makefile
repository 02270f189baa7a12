# The two commands of the README: `make train` and `make test`.
SWIFT ?= swift
RELEASE := -c release
TSAN_SCRATCH := .build-tsan
FUZZ_SCRATCH := .build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: setup build train test test-release test-thread-sanitizer test-fuzz-corpus fuzz fuzz-build bench clean

setup:
	@scripts/install-system-packages.sh

build: setup
	$(SWIFT) build $(RELEASE)

# The main job on the bundled data: Keras's MNIST MLP, 8 epochs, into runs/mnist-mlp. A second
# `make train` reports the finished run; `loom train ... --restart` trains again.
train: build
	.build/release/loom train datasets/jobs/mnist_mlp.yaml

test: setup test-release test-thread-sanitizer test-fuzz-corpus

test-release:
	$(SWIFT) test $(RELEASE) -Xswiftc -enable-testing

# The concurrency tests under ThreadSanitizer: forward and backward on two threads over shared
# parameters, random streams split across threads, the data-parallel trainer (1-8 workers,
# synchronized BatchNormalization, a failing worker), and the input pipeline (parallel map,
# prefetch, CSV parts, image decoding, fit fed by a prefetching dataset), and fit resumed from a
# checkpoint state, training jobs run in-process, and a stateful LSTM's two-worker fit (each
# worker carrying its own samples' states).
# A report stops the tests with an error (by default ThreadSanitizer only prints it).
test-thread-sanitizer:
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --sanitize=thread --scratch-path $(TSAN_SCRATCH) \
		--filter 'AutodiffTests|RandomTests/streamsDoNotDependOnHowDrawsAreSplit|DataParallelTests|DatasetTests|ImageFolderTests|CSVTests/workers|TrainingFromDatasetTests|TrainingStateTests|TrainJobTests|RecurrentModelTests/statefulFitMatchesKeras'

# The libFuzzer targets (loom-fuzz: PNG, JPEG, CSV, gzip, .npy, IDX, .keras, config JSON, HDF5
# weights, job YAML), built with AddressSanitizer into their own scratch path; -DLOOM_FUZZ leaves
# out the corpus replayer's @main, since libFuzzer brings its own main. SwiftPM passes the two
# sanitizers to swiftc as separate flags, of which swiftc keeps only the last (address): the Swift
# code then had no coverage counters and libFuzzer mutated blind. -sanitize=fuzzer,address in one
# flag, after them, gives both (scripts/fuzz.sh replay checks the counters are there).
fuzz-build:
	$(SWIFT) build --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLOOM_FUZZ \
		--scratch-path $(FUZZ_SCRATCH) --product loom-fuzz

# Every target fuzzed for FUZZ_SECONDS (default 60) each; crashes land in Tests/Fuzz/Crashes.
fuzz: setup fuzz-build
	scripts/fuzz.sh run $(FUZZ_SECONDS)

# In make test: every target run once over its corpus and the kept crash inputs.
test-fuzz-corpus: fuzz-build
	scripts/fuzz.sh replay

bench: build
	.build/release/loom bench gemm
	.build/release/loom bench ops

clean:
	rm -rf .build $(TSAN_SCRATCH) $(FUZZ_SCRATCH)
