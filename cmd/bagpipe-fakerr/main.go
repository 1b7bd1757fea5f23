// Command bagpipe-fakerr is a crude fake BGP route reflector: it splices two
// TCP clients (two bagpipe-bgp instances) together. See package fakerr.
package main

import (
	"os"

	"bagpipe/internal/cli/fakerr"
)

func main() {
	os.Exit(fakerr.Run(os.Args[1:], os.Stdout, os.Stderr))
}
