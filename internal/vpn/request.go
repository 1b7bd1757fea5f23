package vpn

import (
	"fmt"
	"net/http"
	"net/netip"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/route"
)

// AttachRequest is a validated attach_localport call (spec §3.6). The api
// package builds it from the JSON body; the manager applies it.
type AttachRequest struct {
	VPNType    dataplane.VPNType
	InstanceID string    // external instance id (vpn_instance_id)
	MACString  string    // the MAC as given: the endpoint key
	MAC        route.MAC // parsed MAC
	// IPString is the raw ip_address string ("" when absent): with the MAC,
	// the endpoint key. IP is its parsed form (invalid when absent).
	IPString        string
	IP              netip.Prefix
	LocalPort       *dataplane.LocalPort
	ImportRTs       []route.RT
	ExportRTs       []route.RT
	GatewayIP       netip.Addr // invalid when absent
	AdvertiseSubnet bool
	Direction       dataplane.Direction
	VNI             uint32 // 0: allocated
	LocalPref       *uint32
	LBHashOrder     uint32 // lb_consistent_hash_order
	LinuxBridge     string
	Description     any     // per endpoint, shown as given
	InstanceDesc    *string // instance_description (nil: null)
	Readvertise     *Readvertise
	AttractTraffic  *AttractTraffic
	Fallback        *dataplane.Fallback
	// Hints asks for the identifiers the attachment had before a restart
	// (state restore, restore.go); nil for API requests.
	Hints *Hints `json:"-"`
}

// DetachRequest is a validated detach_localport call.
type DetachRequest struct {
	VPNType    dataplane.VPNType
	InstanceID string
	MACString  string
	MAC        route.MAC
	IPString   string // "" for a wildcard E-VPN detach
	IP         netip.Prefix
	LocalPort  *dataplane.LocalPort
}

// Readvertise is the route leaking configuration of a VRF (spec §6.7).
type Readvertise struct {
	FromRTs []route.RT
	ToRTs   []route.RT
}

// AttractTraffic is the Flowspec redirection configuration (spec §6.8).
type AttractTraffic struct {
	RedirectRTs []route.RT
	Classifier  map[string]any // as given (camelCase keys), for the looking glass
	// Match is Classifier parsed; the destination prefix of each generated
	// Flowspec route replaces Match.Dst.
	Match                     route.Classifier
	ToRTs                     []route.RT
	StaticDestinationPrefixes []netip.Prefix
}

// Error is an error to report to the API client with an HTTP status.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// BadRequest returns a 400 error.
func BadRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// NotFound returns a 404 error.
func NotFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf(format, args...)}
}
