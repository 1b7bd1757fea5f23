package version

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestEveryCommandInstallsAndHasVersion installs every command of cmd/
// with go install and checks that each one answers --version with
// "<name> <version>".
func TestEveryCommandInstallsAndHasVersion(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, goBin, "install", "./cmd/...")
	install.Dir = root
	install.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/...: %v\n%s", err, out)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		name := d.Name()
		out, err := exec.CommandContext(ctx, filepath.Join(bin, name), "--version").CombinedOutput()
		if err != nil || string(out) != name+" "+Version+"\n" {
			t.Errorf("%s --version: %v %q", name, err, out)
		}
		if !strings.HasPrefix(name, "bagpipe-") {
			t.Errorf("command %s is not named bagpipe-*", name)
		}
	}
	if n < 5 {
		t.Errorf("only %d commands in cmd/", n)
	}
}
