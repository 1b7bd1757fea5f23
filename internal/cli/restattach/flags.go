package restattach

import (
	"errors"
	"net/netip"
	"strconv"

	"bagpipe/internal/pyjson"
)

// constValue is a boolean-style option that stores a constant into a
// destination shared with other options, like optparse's store_const
// (--attach/--detach, --advertise-singleton/--advertise-subnet): the last
// one given wins.
type constValue[T any] struct {
	dest  *T
	value T
}

func (v constValue[T]) String() string   { return "" }
func (v constValue[T]) IsBoolFlag() bool { return true }

func (v constValue[T]) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if on {
		*v.dest = v.value
	}
	return err
}

// classifierValue is a traffic classifier option: it sets one key of the
// classifier object, which keeps the order in which keys were first given.
type classifierValue struct {
	classifier *pyjson.Object
	key        string
}

func (v classifierValue) String() string { return "" }

func (v classifierValue) Set(s string) error {
	*v.classifier = v.classifier.Set(v.key, s)
	return nil
}

// defaultGateway returns the second-to-last address of prefix (an address
// with a prefix length), e.g. 10.0.0.254 for 10.0.0.1/24.
func defaultGateway(prefix string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return netip.Addr{}, err
	}
	if p.Bits() == p.Addr().BitLen() {
		return netip.Addr{}, errors.New("the prefix holds a single address")
	}
	last := p.Addr().AsSlice()
	for i := p.Bits(); i < len(last)*8; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	addr, _ := netip.AddrFromSlice(last)
	return addr.Prev(), nil
}
