// Command bagpipe-rest-attach attaches a local port to, or detaches it from,
// a VPN instance through the bagpipe-bgp REST API. See package restattach.
package main

import (
	"os"

	"bagpipe/internal/cli/restattach"
)

func main() {
	os.Exit(restattach.Run(os.Args[1:], os.Stdout, os.Stderr))
}
