#!/usr/bin/env bash
# Sets up the machine and runs every test: formatting and vet checks, unit
# tests, and the integration tests (as root: they create network namespaces
# and start gobgpd, FRR bgpd and our daemons inside them).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=auto
# Tests that would skip for a missing package or privilege fail instead.
export BAGPIPE_TESTFABRIC_STRICT=1

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go vet ./...
go build ./...
# -race everywhere: the engine, the speaker and the API are concurrent.
go test -race -count=1 -timeout 15m ./... 2>&1 | tee /tmp/bagpipe-test.log

# Every fuzz target, for a short time each, from its committed seed corpus
# (testdata/fuzz/<name>): the seeds also run in the go test above; this
# explores around them. BAGPIPE_FUZZTIME=0 skips this step.
fuzztime="${BAGPIPE_FUZZTIME:-10s}"
if [ "$fuzztime" != 0 ]; then
  for f in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
    pkg="./$(dirname "${f#./}")"
    for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
      echo "fuzz $pkg $name ($fuzztime)"
      if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/bagpipe-fuzz.log 2>&1; then
        cat /tmp/bagpipe-fuzz.log; exit 1
      fi
      grep "execs:" /tmp/bagpipe-fuzz.log | tail -1; tail -1 /tmp/bagpipe-fuzz.log
    done
  done
fi
