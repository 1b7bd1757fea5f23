// Command bagpipe-bgp is the BGP VPN speaker of a compute node.
package main

import (
	"os"

	"bagpipe/internal/daemon"
)

func main() { os.Exit(daemon.Main("bagpipe-bgp", os.Args[1:], os.Stdout, os.Stderr)) }
