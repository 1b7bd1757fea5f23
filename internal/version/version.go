// Package version holds the version string reported by the bagpipe commands.
package version

// Version is the version of the bagpipe tools. It may be overridden at link
// time with -ldflags "-X bagpipe/internal/version.Version=1.2.3".
var Version = "0.1.0-dev"
