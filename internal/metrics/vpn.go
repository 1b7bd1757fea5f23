package metrics

import "bagpipe/internal/vpn"

// VPNInstances returns the Instances source reading the instances of a VPN
// manager: a lock per instance, no route walk.
func VPNInstances(m *vpn.Manager) func() []InstanceStatus {
	return func() []InstanceStatus {
		insts := m.Instances()
		out := make([]InstanceStatus, 0, len(insts))
		for _, inst := range insts {
			out = append(out, InstanceStatus{
				ExternalID:  inst.ExternalID,
				Name:        inst.Name,
				VPNType:     string(inst.Type),
				QueueLength: inst.QueueLength(),
				Received:    inst.ReceivedRoutes(),
			})
		}
		return out
	}
}
