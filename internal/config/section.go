package config

import (
	"fmt"
	"net/netip"
	"slices"
)

// Section holds the validated, typed values of the declared options of one
// configuration section.
//
// The accessors panic when the option is not declared in the section or
// when its kind does not match the accessor: both are programming errors,
// not configuration errors (those are reported by Load).
type Section struct {
	name   string
	opts   []*Option          // declaration order
	byName map[string]*Option // declared name -> option
	values map[string]any     // typed value; missing or nil = unset
	raw    map[string]string  // value as written (interpolated), for options set in a file
}

func newSection(name string) *Section {
	return &Section{
		name:   name,
		byName: map[string]*Option{},
		values: map[string]any{},
		raw:    map[string]string{},
	}
}

// declare adds options to the section; a name declared twice is an error.
func (s *Section) declare(opts ...Option) error {
	for i := range opts {
		o := opts[i]
		if o.Name == "" {
			return fmt.Errorf("section [%s]: option with an empty name", s.name)
		}
		for _, n := range append([]string{o.Name}, o.Deprecated...) {
			if _, dup := s.byName[n]; dup {
				return fmt.Errorf("section [%s]: option %s declared twice", s.name, n)
			}
		}
		if err := o.checkDefault(); err != nil {
			return fmt.Errorf("section [%s]: %w", s.name, err)
		}
		o.Choices = append([]string(nil), o.Choices...)
		o.Deprecated = append([]string(nil), o.Deprecated...)
		s.opts = append(s.opts, &o)
		s.byName[o.Name] = &o
		for _, alias := range o.Deprecated {
			s.byName[alias] = &o
		}
	}
	return nil
}

// Name returns the canonical section name, e.g. "BGP".
func (s *Section) Name() string { return s.name }

// Options returns the declared options, in declaration order.
func (s *Section) Options() []Option {
	out := make([]Option, len(s.opts))
	for i, o := range s.opts {
		out[i] = *o
	}
	return out
}

// Declared reports whether name is a declared option (or a deprecated
// alias of one).
func (s *Section) Declared(name string) bool {
	_, ok := s.byName[name]
	return ok
}

// IsSet reports whether the option has a value, from a file, the command
// line or its default.
func (s *Section) IsSet(name string) bool {
	return s.Value(name) != nil
}

// FromFile reports whether the option was set in a configuration file.
func (s *Section) FromFile(name string) bool {
	_, ok := s.raw[s.option(name).Name]
	return ok
}

// Value returns the typed value of the option (see the Kind constants for
// the Go types), nil when unset.
func (s *Section) Value(name string) any {
	return s.values[s.option(name).Name]
}

// String returns the value of a String, Enum or Host option, or the value
// as written of an IPOrInterface option (an address or interface name);
// "" when unset.
func (s *Section) String(name string) string {
	o := s.option(name)
	switch o.Kind {
	case String, Enum, Host:
		v, _ := s.values[o.Name].(string)
		return v
	case IPOrInterface:
		if raw, ok := s.raw[o.Name]; ok {
			return raw
		}
		if a, ok := s.values[o.Name].(netip.Addr); ok {
			return a.String()
		}
		return ""
	}
	panic(s.kindMismatch(o, "String"))
}

// Int returns the value of an Int or Port option, 0 when unset.
func (s *Section) Int(name string) int {
	o := s.option(name)
	if o.Kind != Int && o.Kind != Port {
		panic(s.kindMismatch(o, "Int"))
	}
	v, _ := s.values[o.Name].(int)
	return v
}

// Bool returns the value of a Bool option, false when unset.
func (s *Section) Bool(name string) bool {
	o := s.option(name)
	if o.Kind != Bool {
		panic(s.kindMismatch(o, "Bool"))
	}
	v, _ := s.values[o.Name].(bool)
	return v
}

// List returns the value of a List option, nil when unset.
func (s *Section) List(name string) []string {
	o := s.option(name)
	if o.Kind != List {
		panic(s.kindMismatch(o, "List"))
	}
	v, _ := s.values[o.Name].([]string)
	return slices.Clone(v)
}

// Addr returns the (resolved) address of an IPOrInterface option, the zero
// Addr when unset.
func (s *Section) Addr(name string) netip.Addr {
	o := s.option(name)
	if o.Kind != IPOrInterface {
		panic(s.kindMismatch(o, "Addr"))
	}
	v, _ := s.values[o.Name].(netip.Addr)
	return v
}

// Addrs returns the value of an IPv4List option, nil when unset.
func (s *Section) Addrs(name string) []netip.Addr {
	o := s.option(name)
	if o.Kind != IPv4List {
		panic(s.kindMismatch(o, "Addrs"))
	}
	v, _ := s.values[o.Name].([]netip.Addr)
	return slices.Clone(v)
}

// Effective returns the JSON-friendly value of every declared option
// (nil for unset), keyed by option name.
func (s *Section) Effective() map[string]any {
	out := make(map[string]any, len(s.opts))
	for _, o := range s.opts {
		v := s.values[o.Name]
		if o.Secret && v != nil && formatValue(v) != "" {
			out[o.Name] = SecretMask
			continue
		}
		out[o.Name] = jsonValue(v)
	}
	return out
}

func (s *Section) option(name string) *Option {
	o, ok := s.byName[name]
	if !ok {
		panic(fmt.Sprintf("config: option %s is not declared in section [%s]", name, s.name))
	}
	return o
}

func (s *Section) kindMismatch(o *Option, accessor string) string {
	return fmt.Sprintf("config: option %s in section [%s] is of kind %v, not readable with %s", o.Name, s.name, o.Kind, accessor)
}
