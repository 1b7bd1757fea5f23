package dataplane

import "context"

// Adopter is implemented by drivers that can take over, after a restart,
// the dataplane state of the instances the daemon restores from its state
// directory, instead of removing it and building it again: traffic keeps
// flowing across the restart. The daemon checks for it by type assertion;
// other drivers need not change (their state is reset and rebuilt, as
// without a state directory).
//
// Sequence: KeepForAdoption (before the first instance is created, so
// before ResetState), then the restored instances are created (each takes
// over what it finds, its entries are "adopted"), then the routes received
// confirm entries (SetupRemote, AddBUM, VIFPlugged make them normal), and
// once the initial BGP exchange is over (or after a bounded delay)
// SweepAdopted removes what no route confirmed.
type Adopter interface {
	// KeepForAdoption gives the external ids of the instances about to be
	// restored: ResetState keeps their kernel objects and entries, and the
	// creation of one of these instances adopts what it finds.
	KeepForAdoption(externalIDs []string)
	// SweepAdopted removes the adopted entries no call confirmed since,
	// and the kept objects of instances that were not restored. It is
	// called once; after it the driver behaves as if nothing was adopted.
	SweepAdopted(ctx context.Context) error
}
