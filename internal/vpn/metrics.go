package vpn

import "bagpipe/internal/route"

// Accessors for the metrics: cheap reads of what an instance already keeps.

// QueueLength returns the number of route events waiting in the
// instance's inbox.
func (inst *Instance) QueueLength() int { return inst.inbox.Len() }

// ReceivedRoutes returns the number of routes the instance currently
// holds from the engine (the candidates of its best path selection), per
// family; families without routes are left out.
func (inst *Instance) ReceivedRoutes() map[route.Family]int {
	inst.trMu.RLock()
	counts := inst.tracker.received
	inst.trMu.RUnlock()
	out := map[route.Family]int{}
	for f, n := range counts {
		if n != 0 {
			out[route.Family(f)] = n
		}
	}
	return out
}
