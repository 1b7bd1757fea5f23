package vpn

import (
	"context"
	"net/netip"

	"bagpipe/internal/route"
)

// State across restarts (internal/state): the identifiers an attachment
// was given are recorded with it and asked for again when it is replayed
// after a restart, so that the instance ids (kernel names), labels, VNIs
// and RDs that remote nodes hold in their routes and dataplanes stay
// valid.

// Hints are the identifiers an attachment had before a restart. Zero or
// nil fields leave the choice to the allocators, as does an identifier
// already in use (then another is allocated).
type Hints struct {
	// InstanceID is the internal instance id (VRF-<id>, EVI-<id>).
	InstanceID uint32 `json:"instance_id,omitempty"`
	// InstanceLabel is the instance label (the VNI of an EVI) when it was
	// allocated, not forced by the request's vni.
	InstanceLabel uint32 `json:"instance_label,omitempty"`
	// InstanceRD is the number of the instance RD (<bgp address>:<n>).
	InstanceRD *uint32 `json:"instance_rd,omitempty"`
	// PortLabel is the label of the endpoint's MAC (IP VPN port label).
	PortLabel uint32 `json:"port_label,omitempty"`
	// EndpointRD is the number of the endpoint's own RD, when it has one
	// (E-VPN without IP, advertise_subnet).
	EndpointRD *uint32 `json:"endpoint_rd,omitempty"`
}

func (h *Hints) instanceLabel() *uint32 {
	if h == nil || h.InstanceLabel == 0 {
		return nil
	}
	return &h.InstanceLabel
}

func (h *Hints) instanceRD() *uint32 {
	if h == nil {
		return nil
	}
	return h.InstanceRD
}

func (h *Hints) portLabel() *uint32 {
	if h == nil || h.PortLabel == 0 {
		return nil
	}
	return &h.PortLabel
}

func (h *Hints) endpointRD() *uint32 {
	if h == nil {
		return nil
	}
	return h.EndpointRD
}

// instanceID returns the id of a new instance: the hinted one when no
// instance has it, else the next one (m.mu held; the caller checked that
// ids are left). lastID stays the highest id ever given, so lastID+1 is
// free.
func (m *Manager) instanceID(h *Hints) uint32 {
	if h != nil && h.InstanceID != 0 && !m.idInUse(h.InstanceID) {
		m.lastID = max(m.lastID, h.InstanceID)
		return h.InstanceID
	}
	m.lastID++
	return m.lastID
}

func (m *Manager) idInUse(id uint32) bool {
	for _, inst := range m.instances {
		if inst.ID == id {
			return true
		}
	}
	return false
}

// Hold creates the instance of req if it does not exist (with req.Hints)
// without plugging anything, and keeps it until release is called: the
// instance a restore recreates stays while its endpoints are replayed,
// whatever their order. An instance left without endpoints goes at
// release.
func (m *Manager) Hold(ctx context.Context, req *AttachRequest) (release func(), err error) {
	if m.drivers[req.VPNType] == nil {
		return nil, BadRequest("No dataplane driver for VPN type %s", req.VPNType)
	}
	inst, err := m.acquire(ctx, req)
	if err != nil {
		return nil, err
	}
	return func() { m.release(ctx, inst) }, nil
}

// Identifiers returns the identifiers of an instance and, when it is
// plugged, of its endpoint (mac, ip): what a restart must give them again.
// instance is false when there is no such instance, endpoint false when
// the endpoint is not plugged.
func (m *Manager) Identifiers(externalID string, mac route.MAC, ip netip.Prefix) (h Hints, instance, endpoint bool) {
	inst := m.Instance(externalID)
	if inst == nil {
		return Hints{}, false, false
	}
	rd := uint32(uint16(inst.rd))
	h = Hints{InstanceID: inst.ID, InstanceRD: &rd}
	if !inst.forcedVNI {
		h.InstanceLabel = inst.label
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	ep := inst.endpoints[epKey{mac: mac, ip: ip}]
	if ep == nil {
		return h, true, false
	}
	h.PortLabel = ep.mac.label
	if ep.ownRD {
		n := uint32(uint16(ep.rd))
		h.EndpointRD = &n
	}
	return h, true, true
}

// PendingEvents returns the route events delivered to the instances and
// not processed yet.
func (m *Manager) PendingEvents() int64 {
	var n int64
	for _, inst := range m.Instances() {
		n += inst.pendingEvents()
	}
	return n
}

// Shutdown stops every instance, as Stop, but leaves the dataplane as it
// is (no cleanup, no veth removed), withdraws nothing from the engine and
// releases nothing: a daemon whose attachments are persisted stops this
// way, before closing its BGP sessions (the withdrawals of the routes
// learned from the peers then reach no instance), and the next run
// restores the instances and adopts their dataplane state, so that
// traffic keeps flowing across a restart; peers that keep our routes
// while we restart (BGP graceful restart) keep them.
//
// As Stop, it refuses new instances from its start (an instance goroutine
// still running may want a redirection VRF) and waits for the removals of
// redirection VRFs already in progress (those touch the dataplane: they
// were decided before the shutdown), or until ctx is done.
func (m *Manager) Shutdown(ctx context.Context) {
	for _, inst := range m.takeAll() {
		if inst.cancel != nil {
			inst.cancel()
			select {
			case <-inst.done:
			case <-ctx.Done():
			}
		}
		if m.forgetLogs != nil {
			m.forgetLogs(inst.Name)
		}
	}
	m.bg.wait(ctx)
}
