# The two commands of the README: `make train` and `make test`.
SWIFT ?= swift
RELEASE := -c release
TSAN_SCRATCH := .build-tsan

.PHONY: setup build train test test-release test-thread-sanitizer bench clean

setup:
	@scripts/install-system-packages.sh

build: setup
	$(SWIFT) build $(RELEASE)

# The main job on the bundled data: Keras's MNIST MLP, 8 epochs, into runs/mnist-mlp. A second
# `make train` reports the finished run; `loom train ... --restart` trains again.
train: build
	.build/release/loom train datasets/jobs/mnist_mlp.yaml

test: setup test-release test-thread-sanitizer

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

bench: build
	.build/release/loom bench gemm
	.build/release/loom bench ops

clean:
	rm -rf .build $(TSAN_SCRATCH)
