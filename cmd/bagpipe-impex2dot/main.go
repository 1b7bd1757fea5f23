// Command bagpipe-impex2dot prints the import/export graph of the VPN
// instances of bagpipe-bgp daemons as a Graphviz digraph (or renders it to
// SVG). See package impex2dot.
package main

import (
	"os"

	"bagpipe/internal/cli/impex2dot"
)

func main() {
	os.Exit(impex2dot.Run(os.Args[1:], os.Stdout, os.Stderr))
}
