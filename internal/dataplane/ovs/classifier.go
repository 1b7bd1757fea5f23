package ovs

import (
	"context"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// AddClassifier implements dataplane.IPVPNInstance.
func (i *Instance) AddClassifier(context.Context, route.Classifier, uint32) error {
	return dataplane.ErrNotSupported
}

// RemoveClassifier implements dataplane.IPVPNInstance.
func (i *Instance) RemoveClassifier(context.Context, route.Classifier) error {
	return dataplane.ErrNotSupported
}
