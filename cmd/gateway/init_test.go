package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// initHeapBudget bounds what package initialisation allocates. Everything
// allocated before main stays in the heap of an idle gateway and, with the
// default GOGC, is counted twice in the peak of a large upload. It was
// 12.5 MB while swaggo/files copied the Swagger UI files into the heap at
// start-up (8.6 MB of it); it is about 4 MB now.
const initHeapBudget = 6 << 20

// TestInitHeap runs this test binary (which links every package the gateway
// does) again with GODEBUG=inittrace=1 and adds up the bytes each package's
// init allocated.
func TestInitHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.String())
	}
	type pkg struct {
		name  string
		bytes int64
	}
	var pkgs []pkg
	var total int64
	for line := range strings.Lines(stderr.String()) {
		// init <package> @0.46 ms, 0.19 ms clock, 8628424 bytes, 18 allocs
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "init" || f[len(f)-3] != "bytes," {
			continue
		}
		n, err := strconv.ParseInt(f[len(f)-4], 10, 64)
		if err != nil {
			t.Fatalf("unexpected inittrace line %q", line)
		}
		pkgs = append(pkgs, pkg{f[1], n})
		total += n
	}
	if len(pkgs) == 0 {
		t.Fatalf("no inittrace output:\n%s", stderr.String())
	}
	slices.SortFunc(pkgs, func(a, b pkg) int { return cmp.Compare(b.bytes, a.bytes) })
	var top strings.Builder
	for _, p := range pkgs[:min(8, len(pkgs))] {
		fmt.Fprintf(&top, "\n  %9d  %s", p.bytes, p.name)
	}
	t.Logf("package initialisation allocated %d bytes in %d packages; largest:%s", total, len(pkgs), top.String())
	if total > initHeapBudget {
		t.Errorf("package initialisation allocated %d bytes, budget %d: an idle gateway keeps it in its heap; largest:%s",
			total, initHeapBudget, top.String())
	}
}
