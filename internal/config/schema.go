package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Kind is the type of an option value.
type Kind int

// Option kinds. The Go type of a typed value (and of Option.Default) is
// given for each kind.
const (
	String        Kind = iota // string, taken as written
	Int                       // int, decimal, optionally bounded
	Bool                      // bool: true/false, yes/no, on/off, 1/0 (any case)
	Port                      // int, 0..65535
	List                      // []string: comma separated, items trimmed, empty items dropped
	IPOrInterface             // netip.Addr: an IPv4 address, or an interface name resolved to its first IPv4 address
	Enum                      // string, one of Option.Choices (case-sensitive)
	Host                      // string: an IP address or a DNS host name
	IPv4List                  // []netip.Addr: comma separated IPv4 addresses
)

var kindNames = [...]string{
	String:        "string",
	Int:           "integer",
	Bool:          "boolean",
	Port:          "port",
	List:          "list",
	IPOrInterface: "IPv4 address or interface name",
	Enum:          "enum",
	Host:          "host address",
	IPv4List:      "list of IPv4 addresses",
}

func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Bounds is an inclusive range of integer values.
type Bounds struct{ Min, Max int }

// Option declares one configuration option.
type Option struct {
	Name string
	Kind Kind
	// Default is the value used when the option is not set; nil means
	// unset. Its Go type must match Kind (see the Kind constants).
	Default any
	// Required makes loading fail when the option is set nowhere.
	Required bool
	// Bounds restricts Int values (Port is always 0..65535).
	Bounds *Bounds
	// Nullable lets an empty Int or Port value unset the option (oslo.config
	// turns an empty integer into None); otherwise an empty value is invalid.
	Nullable bool
	// Choices lists the allowed values of an Enum option.
	Choices []string
	// Deprecated lists former names of the option in the same section;
	// using one gives a deprecation warning.
	Deprecated []string
	// Help is a one-line description.
	Help string
	// Secret hides the value (passwords): Effective shows SecretMask
	// instead of a value that is set.
	Secret bool
}

// SecretMask stands for the value of a Secret option in Effective.
const SecretMask = "<secret>"

// ValueError reports an invalid option value, or a missing required
// option (then Value is empty and Missing is true).
type ValueError struct {
	Section string // canonical section name, e.g. "BGP"
	Option  string
	Value   string
	Reason  string
	Missing bool
	File    string // where the value was set, if known
	Line    int
}

func (e *ValueError) Error() string {
	if e.Missing {
		return fmt.Sprintf("missing required option %s in section [%s]", e.Option, e.Section)
	}
	return fmt.Sprintf("invalid value %q for option %s in section [%s]: %s", e.Value, e.Option, e.Section, e.Reason)
}

// interfaceResolver resolves an interface name to its first IPv4 address.
// It is a variable so that tests can simulate interfaces.
var interfaceResolver = interfaceIPv4

// parse converts a (stripped, interpolated) string into the typed value of
// the option. A nil value with a nil error means "explicitly unset".
func (o *Option) parse(s string) (any, error) {
	switch o.Kind {
	case String:
		return s, nil
	case Int, Port:
		return o.parseInt(s)
	case Bool:
		return parseBool(s)
	case List:
		return splitList(s), nil
	case IPOrInterface:
		return parseIPOrInterface(s)
	case Enum:
		if !slices.Contains(o.Choices, s) {
			return nil, fmt.Errorf("must be one of: %s", strings.Join(o.Choices, ", "))
		}
		return s, nil
	case Host:
		if !validHost(s) {
			return nil, fmt.Errorf("not an IP address or host name")
		}
		return s, nil
	case IPv4List:
		items := splitList(s)
		addrs := make([]netip.Addr, 0, len(items))
		for _, it := range items {
			a, err := netip.ParseAddr(it)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%q is not an IPv4 address", it)
			}
			addrs = append(addrs, a)
		}
		return addrs, nil
	}
	return nil, fmt.Errorf("unsupported option kind %v", o.Kind)
}

func (o *Option) parseInt(s string) (any, error) {
	s = strings.TrimSpace(s)
	if s == "" && o.Nullable {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return nil, fmt.Errorf("out of range %s", o.bounds())
		}
		return nil, fmt.Errorf("not an integer")
	}
	if b := o.limits(); b != nil && (n < b.Min || n > b.Max) {
		return nil, fmt.Errorf("out of range %s", o.bounds())
	}
	return n, nil
}

// limits returns the effective bounds of an integer option, nil if none.
func (o *Option) limits() *Bounds {
	if o.Kind == Port {
		return &Bounds{0, 65535}
	}
	return o.Bounds
}

func (o *Option) bounds() string {
	if b := o.limits(); b != nil {
		return fmt.Sprintf("%d..%d", b.Min, b.Max)
	}
	return "for an integer"
}

// parseBool accepts the oslo.config boolean spellings, case-insensitively.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "on", "yes":
		return true, nil
	case "false", "0", "off", "no":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean (use true/false, yes/no, on/off or 1/0)")
}

// splitList splits a comma separated list, trims the items and drops the
// empty ones. The result is never nil.
func splitList(s string) []string {
	out := []string{}
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// parseIPOrInterface accepts an IPv4 address or the name of an interface
// having an IPv4 address.
func parseIPOrInterface(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("empty value: expected an IPv4 address or an interface name")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return netip.Addr{}, fmt.Errorf("not an IPv4 address")
		}
		return a, nil
	}
	return interfaceResolver(s)
}

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validHost reports whether s is an IP address or a host name valid for
// oslo.config's HostAddress type (RFC 1123 labels, non-numeric TLD).
func validHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if s == "" || len(s) > 253 {
		return false
	}
	s = strings.TrimSuffix(s, ".")
	labels := strings.Split(s, ".")
	if !strings.ContainsAny(labels[len(labels)-1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") {
		return false
	}
	for _, l := range labels {
		if !hostnameLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// checkDefault verifies that the Go type of the default matches the kind.
func (o *Option) checkDefault() error {
	if o.Default == nil {
		return nil
	}
	var ok bool
	switch o.Kind {
	case String, Enum, Host:
		var s string
		s, ok = o.Default.(string)
		if ok && o.Kind == Enum && !slices.Contains(o.Choices, s) {
			return fmt.Errorf("option %s: default %q is not one of its choices", o.Name, s)
		}
	case Int, Port:
		_, ok = o.Default.(int)
	case Bool:
		_, ok = o.Default.(bool)
	case List:
		_, ok = o.Default.([]string)
	case IPOrInterface:
		var a netip.Addr
		a, ok = o.Default.(netip.Addr)
		ok = ok && a.Is4()
	case IPv4List:
		_, ok = o.Default.([]netip.Addr)
	}
	if !ok {
		return fmt.Errorf("option %s: default %#v does not suit kind %v", o.Name, o.Default, o.Kind)
	}
	return nil
}

// formatValue renders a typed value as a string, the way oslo.config
// substitutes a referenced option (Python str(): True/False for booleans).
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(v)
	case []string:
		return strings.Join(v, ",")
	case netip.Addr:
		return v.String()
	case []netip.Addr:
		parts := make([]string, len(v))
		for i, a := range v {
			parts[i] = a.String()
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// jsonValue converts a typed value to a JSON-friendly one (strings,
// numbers, bools, lists of strings, nil).
func jsonValue(v any) any {
	switch v := v.(type) {
	case netip.Addr:
		return v.String()
	case []netip.Addr:
		out := make([]string, len(v))
		for i, a := range v {
			out[i] = a.String()
		}
		return out
	case []string:
		return append([]string{}, v...)
	}
	return v
}
