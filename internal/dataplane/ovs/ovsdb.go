package ovs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Partial models of the Open_vSwitch database: only the columns we read or
// write.

type ovsRoot struct {
	UUID    string   `ovsdb:"_uuid"`
	Bridges []string `ovsdb:"bridges"`
}

type ovsBridge struct {
	UUID      string   `ovsdb:"_uuid"`
	Name      string   `ovsdb:"name"`
	Ports     []string `ovsdb:"ports"`
	Protocols []string `ovsdb:"protocols"`
}

type ovsPort struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type ovsInterface struct {
	UUID    string            `ovsdb:"_uuid"`
	Name    string            `ovsdb:"name"`
	Type    string            `ovsdb:"type"`
	Options map[string]string `ovsdb:"options"`
	Ofport  *int              `ovsdb:"ofport"`
	Error   *string           `ovsdb:"error"`
}

// ownerKey marks, in Port external_ids, the ports this driver created.
const (
	ownerKey   = "bagpipe-owner"
	ownerValue = "ipvpn-ovs"
)

// vsdb is the Open_vSwitch database, through libovsdb with a monitored
// cache of the tables above.
type vsdb struct {
	c client.Client
}

func dialVSDB(ctx context.Context, endpoint string, log *slog.Logger) (*vsdb, error) {
	dbModel, err := model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		"Open_vSwitch": &ovsRoot{},
		"Bridge":       &ovsBridge{},
		"Port":         &ovsPort{},
		"Interface":    &ovsInterface{},
	})
	if err != nil {
		return nil, err
	}
	lg := logr.FromSlogHandler(log.With("component", "libovsdb").Handler()).V(4)
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithLogger(&lg))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		return nil, fmt.Errorf("OVSDB %s: %w", endpoint, err)
	}
	// Only the columns of our models (the others are not mapped).
	root, br, port, iface := &ovsRoot{}, &ovsBridge{}, &ovsPort{}, &ovsInterface{}
	mon := c.NewMonitor(
		client.WithTable(root, &root.Bridges),
		client.WithTable(br, &br.Name, &br.Ports, &br.Protocols),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Options, &iface.Ofport, &iface.Error),
	)
	if _, err := c.Monitor(cctx, mon); err != nil {
		c.Close()
		return nil, fmt.Errorf("OVSDB %s: monitor: %w", endpoint, err)
	}
	return &vsdb{c: c}, nil
}

func (v *vsdb) Close() { v.c.Close() }

func (v *vsdb) bridge(ctx context.Context, name string) (*ovsBridge, error) {
	var bs []ovsBridge
	if err := v.c.WhereCache(func(b *ovsBridge) bool { return b.Name == name }).List(ctx, &bs); err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, nil
	}
	return &bs[0], nil
}

func (v *vsdb) port(ctx context.Context, name string) (*ovsPort, error) {
	var ps []ovsPort
	if err := v.c.WhereCache(func(p *ovsPort) bool { return p.Name == name }).List(ctx, &ps); err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return &ps[0], nil
}

func (v *vsdb) iface(ctx context.Context, name string) (*ovsInterface, error) {
	var is []ovsInterface
	if err := v.c.WhereCache(func(i *ovsInterface) bool { return i.Name == name }).List(ctx, &is); err != nil {
		return nil, err
	}
	if len(is) == 0 {
		return nil, nil
	}
	return &is[0], nil
}

func (v *vsdb) transact(ctx context.Context, ops []ovsdb.Operation) error {
	res, err := v.c.Transact(ctx, ops...)
	if err != nil {
		return err
	}
	_, err = ovsdb.CheckOperationResults(res, ops)
	return err
}

// ensureOpenFlow15 adds OpenFlow15 to the bridge's protocols when the
// column restricts them (an empty column allows the default set, which
// includes OpenFlow 1.5 in Open vSwitch ≥ 2.12).
func (v *vsdb) ensureOpenFlow15(ctx context.Context, br *ovsBridge) error {
	if len(br.Protocols) == 0 || slices.Contains(br.Protocols, "OpenFlow15") {
		return nil
	}
	ops, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Protocols, Mutator: ovsdb.MutateOperationInsert, Value: []string{"OpenFlow15"}})
	if err != nil {
		return err
	}
	return v.transact(ctx, ops)
}

// ofport waits until the interface of a port has an OpenFlow port number.
func (v *vsdb) ofport(ctx context.Context, name string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		i, err := v.iface(ctx, name)
		if err != nil {
			return 0, err
		}
		if i != nil && i.Ofport != nil && *i.Ofport > 0 {
			return *i.Ofport, nil
		}
		if i != nil && i.Ofport != nil && *i.Ofport == -1 {
			msg := "unknown error"
			if i.Error != nil {
				msg = *i.Error
			}
			return 0, fmt.Errorf("OVS could not add port %s: %s", name, msg)
		}
		select {
		case <-ctx.Done():
			if i == nil {
				return 0, fmt.Errorf("OVS port %s not found", name)
			}
			return 0, fmt.Errorf("OVS port %s has no OpenFlow port number", name)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// addPort adds a port with one interface to a bridge, marked as ours.
func (v *vsdb) addPort(ctx context.Context, bridge, name, typ string, options map[string]string) error {
	br, err := v.bridge(ctx, bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("OVS bridge '%s' doesn't exist", bridge)
	}
	iface := &ovsInterface{UUID: "iface", Name: name, Type: typ, Options: options}
	port := &ovsPort{UUID: "port", Name: name, Interfaces: []string{"iface"}, ExternalIDs: map[string]string{ownerKey: ownerValue}}
	ops, err := v.c.Create(iface)
	if err != nil {
		return err
	}
	pops, err := v.c.Create(port)
	if err != nil {
		return err
	}
	ops = append(ops, pops...)
	mut, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{"port"}})
	if err != nil {
		return err
	}
	return v.transact(ctx, append(ops, mut...))
}

// delPort removes a port from a bridge (the port and interface rows go
// with it: they are not root rows). A missing port is not an error.
func (v *vsdb) delPort(ctx context.Context, bridge, name string) error {
	br, err := v.bridge(ctx, bridge)
	if err != nil || br == nil {
		return err
	}
	p, err := v.port(ctx, name)
	if err != nil || p == nil {
		return err
	}
	if !slices.Contains(br.Ports, p.UUID) {
		return nil
	}
	ops, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{p.UUID}})
	if err != nil {
		return err
	}
	return v.transact(ctx, ops)
}

// ownedPorts lists the ports of a bridge this driver created.
func (v *vsdb) ownedPorts(ctx context.Context, bridge string) ([]string, error) {
	br, err := v.bridge(ctx, bridge)
	if err != nil || br == nil {
		return nil, err
	}
	var ps []ovsPort
	err = v.c.WhereCache(func(p *ovsPort) bool {
		return p.ExternalIDs[ownerKey] == ownerValue && slices.Contains(br.Ports, p.UUID)
	}).List(ctx, &ps)
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out, err
}

// waitGone waits until a port has left the cache (deleted).
func (v *vsdb) waitGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		p, err := v.port(ctx, name)
		if err != nil {
			return err
		}
		if p == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("port " + name + " still present")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
