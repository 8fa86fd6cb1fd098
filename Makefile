# make        build build/data-router (release, with debug info)
# make run    install what is missing, build, serve on http://127.0.0.1:$(PORT) in local mode
# make test   install what is missing, build with ASan+UBSan, start the Pub/Sub emulator,
#             PostgreSQL and Redis on free ports, run every test, stop them
PORT ?= 8080
JOBS ?= $(shell nproc)

.PHONY: all build build-test deps test-deps run test unit bench format clean

all: build

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

# only the binary: the tests are built (with sanitizers) by build-test
build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS) --target data-router -- --no-print-directory

build-test: test-deps
	@cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DDR_SANITIZE=ON >/dev/null
	@cmake --build build-test -j $(JOBS) -- --no-print-directory

run: build
	PORT=$(PORT) build/data-router serve

test: build-test
	@scripts/test-env ctest --test-dir build-test --output-on-failure -j 2 $(CTEST_ARGS)

unit: build-test
	@scripts/test-env ctest --test-dir build-test --output-on-failure -L unit -j $(JOBS)

bench: build
	@bench/run

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test
