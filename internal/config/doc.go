// Package config reads the bagpipe-bgp configuration (behavioural
// specification §1.1 and §2): oslo.config compatible INI files, a typed
// option schema with validation, and the daemon command line.
//
// Layers:
//
//   - ReadINI / ReadDir parse and merge INI files with oslo.config
//     semantics (case-insensitive section names except DEFAULT, "#"/";"
//     comments, continuation lines, $name and ${section.name}
//     interpolation, later files winning).
//   - Option declares an option (kind, default, bounds, choices, deprecated
//     names); Section gives typed access to the validated values.
//   - ParseFlags parses the oslo.config/oslo.log command line, and Load
//     puts everything together into a Config.
//
// Dataplane drivers declare the options they read from their section with
// a DriverOptions value passed to Load. Only the options of the driver
// selected by dataplane_driver are declared, validated and shown by
// Config.Effective; options of the other drivers found in the section are
// reported as ignored:
//
//	cfg, warnings, err := config.Load(flags, config.BuiltinDriverOptions()...)
//	...
//	table := cfg.IPVPN.Options.Int("input_table")
//
// The ready-made schemas EVPNLinuxOptions, EVPNOVSOptions, IPVPNOVSOptions
// and IPVPNLinuxOptions describe the options of the built-in drivers; a
// driver package may extend one or declare its own (a new driver name is
// accepted as a dataplane_driver value for its VPN type).
package config
