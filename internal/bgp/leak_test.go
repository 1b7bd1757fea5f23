package bgp

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// checkNoLeak fails the test if goroutines of this package (or of the
// engine) are still running a few seconds after the speaker was stopped.
func checkNoLeak(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := leakedGoroutines()
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/bgp.Test") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "internal/bgp.(") {
			continue
		}
		if strings.Contains(g, "bagpipe/internal/bgp.(") || strings.Contains(g, "bagpipe/internal/engine.(") {
			leaked = append(leaked, g)
		}
	}
	return leaked
}
