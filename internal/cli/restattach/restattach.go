// Package restattach implements bagpipe-rest-attach, a command-line client
// of the bagpipe-bgp REST API that attaches a local port to a VPN instance
// (POST /attach_localport) or detaches it (POST /detach_localport).
//
// It accepts the options of the reference Python tool and sends the same
// request, with these differences: the attract-traffic "to" route targets
// are sent as attract_traffic.to_rt (the key bagpipe-bgp reads; the
// reference sends "to", which the daemon ignores); a missing configuration
// file is not an error; --config-file, --server, --api-port and --mtu are
// extra options; --ovs-preplug is not supported yet.
//
// --port netns[:<if>] (attach) creates a network namespace standing for a
// VM (named by --netns, default the VPN instance id) if it does not exist,
// and a veth pair between the host (<if>, default "ns-<namespace>"
// truncated to 15 bytes) and the namespace (--if2vpn, default "tovpn"; with
// --ovs-vlan N, a VLAN N interface on a veth end named "ns2vpn-raw"), with
// the --ip address, a default route via the gateway and the --mtu MTU
// (default 1450: a 1500-byte underlay minus the 50 bytes of VXLAN over
// IPv4; the reference forced 1420), then attaches the host side. The MAC
// sent is the namespace interface's unless --mac is given (then it is set
// on that interface). Everything is done through netlink, without running
// ip(8); detaching does not delete the namespace. Interfaces of an earlier
// attach with the same names are deleted first.
package restattach

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"bagpipe/internal/cli/cmdline"
	"bagpipe/internal/pyjson"
)

const (
	defaultInstanceID = "bagpipe-test"
	defaultIPVPNRT    = "64512:512"
	defaultEVPNRT     = "64512:513"
	defaultIPVPNMAC   = "52:54:00:99:99:22"
)

// defaultConfigFile is the default of --config-file.
var defaultConfigFile = cmdline.DefaultConfigFile

// options is the parsed command line.
type options struct {
	operation       string // "attach" or "detach"
	networkType     string // "ipvpn" or "evpn"
	vpnInstanceID   string
	port            string
	direction       string
	rts             cmdline.StringList
	importRTs       cmdline.StringList
	exportRTs       cmdline.StringList
	ip              string
	gatewayIP       string
	mac             string
	advertiseSubnet bool
	ovsPreplug      bool
	ovsBridge       string
	ovsVLAN         int
	netns           string
	if2vpn          string
	mtu             int
	readvFromRTs    cmdline.StringList
	readvToRTs      cmdline.StringList
	redirectRTs     cmdline.StringList
	classifier      pyjson.Object
	attractToRTs    cmdline.StringList
	staticPrefixes  cmdline.StringList
	lbHashOrder     int
	vni             int
	localPref       int

	configFile string
	server     string
	apiPort    int
	unixSocket string
}

// Run is the bagpipe-rest-attach command. args excludes the program name.
// It returns the process exit status: 0 on success, 1 when the request
// fails, 2 for an invalid command line.
func Run(args []string, stdout, stderr io.Writer) int {
	cmd := newCommand(stdout, stderr)
	opts, err := cmd.parse(args)
	if err != nil {
		return cmdline.ExitStatus(err)
	}
	url := fmt.Sprintf("http://%s:%d/%s_localport", opts.server, opts.apiPort, opts.operation)
	req, err := cmd.request(opts)
	if err != nil {
		return cmdline.ExitStatus(err)
	}
	body := pyjson.Marshal(req)
	fmt.Fprintf(stdout, "request: %s\n", body)
	return send(url, opts.unixSocket, body, stdout, stderr)
}

// command is the command line definition.
type command struct {
	*cmdline.Command
	stdout io.Writer // for notices
	stderr io.Writer // for errors that are not usage errors
	opts   options
	netns  netnsHelper
}

func newCommand(stdout, stderr io.Writer) *command {
	c := &command{stdout: stdout, stderr: stderr, netns: newNetnsHelper(), Command: cmdline.New("bagpipe-rest-attach",
		"bagpipe-rest-attach [--attach|--detach] --network-type (ipvpn|evpn) "+
			"--port (<port>|netns) --ip <ip>[/<mask>] [options] (see --help)", stdout, stderr)}
	o := &c.opts
	c.Var(constValue[string]{&o.operation, "attach"}, "attach", "attach local port")
	c.Var(constValue[string]{&o.operation, "detach"}, "detach", "detach local port")
	c.StringVar(&o.networkType, "network-type", "", "network type (ipvpn or evpn)")
	c.StringVar(&o.vpnInstanceID, "vpn-instance-id", defaultInstanceID,
		"UUID for the network instance (default: "+defaultInstanceID+"-(ipvpn|evpn))")
	c.StringVar(&o.port, "port", "", "local port to attach/detach (use special port 'netns[:if]' to have an "+
		"interface to a local network namespace attached/detached [with 'if' as the name of the interface to "+
		"the netns]); 'evpn:<id>' plugs the EVPN instance <id> into an ipvpn")
	c.StringVar(&o.direction, "direction", "both", "local port direction (to-port|from-port|both) in VPN (default: both)")
	c.Var(&o.rts, "rt", "route target (can be specified multiple times; default: "+
		defaultIPVPNRT+" for ipvpn, "+defaultEVPNRT+" for evpn, if no --rt, --import-rt or --export-rt)")
	c.Var(&o.importRTs, "import-rt", "import-only route target (can be specified multiple times)")
	c.Var(&o.exportRTs, "export-rt", "export-only route target (can be specified multiple times)")
	c.StringVar(&o.ip, "ip", "", "IP prefix / mask (mask defaults to /24)")
	c.StringVar(&o.gatewayIP, "gateway-ip", "", "IP address of network gateway (optional, defaults to the "+
		"second-to-last IP of the prefix)")
	c.StringVar(&o.mac, "mac", "", "MAC address (required for evpn; default for ipvpn: "+defaultIPVPNMAC+")")
	c.Var(constValue[bool]{&o.advertiseSubnet, false}, "advertise-singleton", "advertise IP address as a /32 (default)")
	c.Var(constValue[bool]{&o.advertiseSubnet, true}, "advertise-subnet", "advertise the whole IP subnet")
	c.BoolVar(&o.ovsPreplug, "ovs-preplug", false, "should we prealably plug the port into an OVS bridge "+
		"(not supported yet)")
	c.StringVar(&o.ovsBridge, "ovs-bridge", "br-int", "if preplug, specifies which OVS bridge to use (default: br-int)")
	c.IntVar(&o.ovsVLAN, "ovs-vlan", 0, "if specified, only this VLAN from the OVS interface will be attached "+
		"to the VPN instance (optional)")
	c.StringVar(&o.netns, "netns", "", "name of network namespace (optional, for use with --port netns)")
	c.StringVar(&o.if2vpn, "if2vpn", "tovpn", "name of interface in netns toward VPN (optional, for use with "+
		"--port netns, default: tovpn)")
	c.IntVar(&o.mtu, "mtu", DefaultMTU, fmt.Sprintf("MTU of the interface in the netns (for use with --port netns, "+
		"default: %d, a 1500-byte underlay minus the VXLAN overhead)", DefaultMTU))
	c.Var(&o.readvFromRTs, "readv-from-rt", "enables route readvertisement from these RTs, works in conjunction "+
		"with --readv-to-rt")
	c.Var(&o.readvToRTs, "readv-to-rt", "enables route readvertisement to these RTs, works in conjunction "+
		"with --readv-from-rt")
	c.Var(&o.redirectRTs, "redirect-rts", "Redirection Route Targets to attract traffic, matching the traffic "+
		"classifier, in specified VRF from any VRF importing this route target")
	for _, f := range []struct{ name, key, usage string }{
		{"source-prefix", "sourcePrefix", "Traffic classifier source prefix filter"},
		{"destination-prefix", "destinationPrefix", "Traffic classifier destination prefix filter"},
		{"source-port", "sourcePort", "Traffic classifier source port number or range filter"},
		{"destination-port", "destinationPort", "Traffic classifier destination port number or range filter"},
		{"protocol", "protocol", "Traffic classifier IP protocol filter"},
	} {
		c.Var(classifierValue{&o.classifier, f.key}, f.name, f.usage)
	}
	c.Var(&o.attractToRTs, "attract-to-rt", "enables route advertisement to these RTs, works in conjunction "+
		"with --static-destination-prefix")
	c.Var(&o.staticPrefixes, "static-destination-prefix", "static destination prefix to advertise, works in "+
		"conjunction with --attract-to-rt")
	c.IntVar(&o.lbHashOrder, "lb-consistent-hash-order", 0, "Load Balancing consistent hash sort order")
	c.IntVar(&o.vni, "vni", 0, "VXLAN VNI to use for this VPN instance (optional)")
	c.IntVar(&o.localPref, "local-pref", 0, "BGP LOCAL PREF attribute (optional)")
	c.StringVar(&o.configFile, "config-file", defaultConfigFile, "bagpipe-bgp configuration file "+
		"giving the API port (default: "+defaultConfigFile+", ignored if missing)")
	c.StringVar(&o.server, "server", "127.0.0.1", "IP address of the bagpipe-bgp API (default: 127.0.0.1)")
	c.StringVar(&o.unixSocket, "unix-socket", "", cmdline.UnixSocketUsage)
	c.IntVar(&o.apiPort, "api-port", cmdline.DefaultAPIPort, "port of the bagpipe-bgp API (default: [API] port "+
		"of the configuration file, else 8082)")
	return c
}

// parse parses and checks the command line; it does not yet apply the
// defaults that depend on other options (see request).
func (c *command) parse(args []string) (*options, error) {
	positional, err := c.Parse(args)
	if err != nil {
		return nil, err
	}
	o := &c.opts
	switch {
	case len(positional) > 0:
		return nil, c.Fail("unexpected argument: " + positional[0])
	case !slices.Contains([]string{"", "ipvpn", "evpn"}, o.networkType):
		return nil, c.Fail(invalidChoice("--network-type", o.networkType, "ipvpn", "evpn"))
	case !slices.Contains([]string{"to-port", "from-port", "both"}, o.direction):
		return nil, c.Fail(invalidChoice("--direction", o.direction, "to-port", "from-port", "both"))
	case o.operation == "":
		return nil, c.Fail("Need to specify --attach or --detach")
	case o.port == "":
		return nil, c.Fail("Need to specify --port <localport>")
	case o.networkType == "":
		return nil, c.Fail("Need to specify --network-type")
	case o.ip == "":
		return nil, c.Fail("Need to specify --ip")
	}
	if !c.IsSet("api-port") {
		o.apiPort, err = cmdline.APIPort(o.configFile)
		if errors.Is(err, fs.ErrNotExist) && !c.IsSet("config-file") {
			o.apiPort, err = cmdline.DefaultAPIPort, nil
		}
		if err != nil {
			return nil, c.Fail(err.Error())
		}
	}
	return o, nil
}

// hasPrefixLength matches an --ip value that ends with a prefix length.
var hasPrefixLength = regexp.MustCompile(`/[0-9]+$`)

// request builds the request object from o, applying the defaults of the
// reference tool and printing the same notices ("using ... as gateway
// address", "will plug evpn ... into the IPVPN").
func (c *command) request(o *options) (pyjson.Object, error) {
	importRTs, exportRTs := []string(o.rts), []string(o.rts)
	if len(o.rts)+len(o.importRTs)+len(o.exportRTs) == 0 {
		defaultRT := defaultIPVPNRT
		if o.networkType == "evpn" {
			defaultRT = defaultEVPNRT
		}
		importRTs, exportRTs = []string{defaultRT}, []string{defaultRT}
	}
	importRTs = append(append([]string{}, importRTs...), o.importRTs...)
	exportRTs = append(append([]string{}, exportRTs...), o.exportRTs...)

	ip := o.ip
	if !hasPrefixLength.MatchString(ip) {
		ip += "/24"
	}
	gatewayIP := o.gatewayIP
	if gatewayIP == "" {
		gw, err := defaultGateway(ip)
		if err != nil {
			return nil, c.Fail(fmt.Sprintf("cannot choose a gateway address for --ip %s: %v (use --gateway-ip)", ip, err))
		}
		gatewayIP = gw.String()
		fmt.Fprintf(c.stdout, "using %s as gateway address\n", gatewayIP)
	}

	instanceID := o.vpnInstanceID
	if instanceID == defaultInstanceID {
		instanceID = o.networkType + "-" + defaultInstanceID
	}

	mac := o.mac
	port := o.port
	if strings.HasPrefix(o.port, "netns") {
		var err error
		if port, mac, err = c.netnsPort(o, instanceID, ip, gatewayIP); err != nil {
			return nil, err
		}
	}
	var localPort pyjson.Object
	if evpnID, ok := strings.CutPrefix(o.port, "evpn:"); ok {
		if o.networkType != "ipvpn" {
			return nil, c.Fail("Can only plug an evpn into an ipvpn")
		}
		fmt.Fprintf(c.stdout, "will plug evpn %s into the IPVPN\n", evpnID)
		localPort = pyjson.Object{{Key: "evpn", Value: pyjson.Object{{Key: "id", Value: evpnID}}}}
	} else {
		if o.ovsPreplug && o.networkType == "ipvpn" {
			return nil, c.Fail("--ovs-preplug is not supported yet")
		}
		localPort = pyjson.Object{{Key: "linuxif", Value: port}}
	}

	if mac == "" {
		if o.networkType != "ipvpn" {
			return nil, c.Fail("Need to specify --mac for an EVPN network attachment if port is not 'netns'")
		}
		mac = defaultIPVPNMAC
	}

	var readvertise any // JSON null unless re-advertisement is asked for
	if len(o.readvToRTs) > 0 {
		readvertise = pyjson.Object{
			{Key: "from_rt", Value: []string(o.readvFromRTs)},
			{Key: "to_rt", Value: []string(o.readvToRTs)},
		}
	}

	attractTraffic := pyjson.Object{}
	if len(o.redirectRTs) > 0 {
		if len(o.classifier) == 0 {
			return nil, c.Fail("Need to specify --redirect-rt and at least one traffic classifier option")
		}
		attractTraffic = append(attractTraffic,
			pyjson.Member{Key: "redirect_rts", Value: []string(o.redirectRTs)},
			pyjson.Member{Key: "classifier", Value: o.classifier})
		if len(o.attractToRTs) > 0 {
			if len(o.staticPrefixes) == 0 {
				return nil, c.Fail("Need to specify --attract-to-rt and at least one static destination prefix option")
			}
			attractTraffic = append(attractTraffic,
				pyjson.Member{Key: "to_rt", Value: []string(o.attractToRTs)},
				pyjson.Member{Key: "static_destination_prefixes", Value: []string(o.staticPrefixes)})
		}
	}

	req := pyjson.Object{
		{Key: "import_rt", Value: importRTs},
		{Key: "export_rt", Value: exportRTs},
		{Key: "local_port", Value: localPort},
		{Key: "vpn_instance_id", Value: instanceID},
		{Key: "vpn_type", Value: o.networkType},
		{Key: "gateway_ip", Value: gatewayIP},
		{Key: "mac_address", Value: mac},
		{Key: "ip_address", Value: ip},
		{Key: "advertise_subnet", Value: o.advertiseSubnet},
		{Key: "readvertise", Value: readvertise},
		{Key: "attract_traffic", Value: attractTraffic},
		{Key: "lb_consistent_hash_order", Value: o.lbHashOrder},
		{Key: "vni", Value: o.vni},
	}
	if o.localPref != 0 {
		req = append(req, pyjson.Member{Key: "local_pref", Value: o.localPref})
	}
	return append(req, pyjson.Member{Key: "direction", Value: o.direction}), nil
}

// netnsPort handles --port netns[:<if>]: on attach it creates the
// namespace port; it returns the port to attach (the host side of the
// veth) and the MAC to send (--mac, else the namespace interface's).
func (c *command) netnsPort(o *options, instanceID, ip, gatewayIP string) (port, mac string, err error) {
	namespace := o.netns
	if namespace == "" {
		namespace = instanceID
	}
	port = defaultHostIf(namespace)
	if _, ifname, ok := strings.Cut(o.port, ":"); ok {
		port = ifname
	}
	mac = o.mac
	if o.operation == "attach" {
		if o.mtu < 68 || o.mtu > 65535 {
			return "", "", c.Fail(fmt.Sprintf("option --mtu: invalid MTU %d (68..65535)", o.mtu))
		}
		addr, err := netip.ParsePrefix(ip)
		if err != nil {
			return "", "", c.Fail(fmt.Sprintf("option --ip: %v", err))
		}
		gw, err := netip.ParseAddr(gatewayIP)
		if err != nil {
			return "", "", c.Fail(fmt.Sprintf("option --gateway-ip: %v", err))
		}
		fmt.Fprintf(c.stdout, "Will plug local namespace %s into network\n", namespace)
		nsMAC, err := c.netns.Plug(netnsPort{Namespace: namespace, HostIf: port, NsIf: o.if2vpn, VLAN: o.ovsVLAN,
			MAC: o.mac, Addr: addr, Gateway: gw, MTU: o.mtu})
		if err != nil {
			fmt.Fprintf(c.stderr, "bagpipe-rest-attach: namespace %s: %v\n", namespace, err)
			return "", "", err
		}
		if mac == "" {
			mac = nsMAC
		}
	} else if mac == "" {
		if mac, err = c.netns.MAC(namespace, o.if2vpn); err != nil {
			fmt.Fprintf(c.stderr, "bagpipe-rest-attach: %v\n", err)
			return "", "", err
		}
	}
	fmt.Fprintf(c.stdout, "Local port: %s (%s)\n", port, mac)
	return port, mac, nil
}

// send posts body to url and reports the outcome like the reference tool:
// "response: <status> <body>" on success; on an HTTP error the indented
// body, then "error <status>, reason: <reason>" on stderr and status 1.
func send(url, socket string, body []byte, stdout, stderr io.Writer) int {
	client := &http.Client{Transport: cmdline.Transport(socket)}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "bagpipe-rest-attach: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	content, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(stderr, "bagpipe-rest-attach: reading the response: %v\n", err)
		return 1
	}
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stdout, "   %s\n", content)
		reason := strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode, " "))
		fmt.Fprintf(stderr, "error %d, reason: %s\n", resp.StatusCode, reason)
		return 1
	}
	fmt.Fprintf(stdout, "response: %d %s\n", resp.StatusCode, content)
	return 0
}

// invalidChoice words an invalid option value as optparse does.
func invalidChoice(option, value string, choices ...string) string {
	return fmt.Sprintf("option %s: invalid choice: '%s' (choose from '%s')", option, value, strings.Join(choices, "', '"))
}
