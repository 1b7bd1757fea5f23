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
