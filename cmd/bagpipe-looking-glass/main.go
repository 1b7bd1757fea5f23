// Command bagpipe-looking-glass prints objects of the bagpipe-bgp looking
// glass. See package lookingglass.
package main

import (
	"os"

	"bagpipe/internal/cli/lookingglass"
)

func main() {
	os.Exit(lookingglass.Run(os.Args[1:], os.Stdout, os.Stderr))
}
