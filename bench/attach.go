package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// attachResult is scenario 3 for one implementation and one mode.
type attachResult struct {
	Impl       string  `json:"impl"`
	Clients    int     `json:"clients"`
	Ports      int     `json:"ports"`
	AttachRate float64 `json:"attach_per_s"`
	AttachP50  float64 `json:"attach_p50_ms"`
	AttachP99  float64 `json:"attach_p99_ms"`
	DetachRate float64 `json:"detach_per_s"`
	DetachP50  float64 `json:"detach_p50_ms"`
	DetachP99  float64 `json:"detach_p99_ms"`
	Failed     int     `json:"failed_requests"`
	Err        string  `json:"error,omitempty"` // the first failure
}

// advResult is scenario 4 for one implementation.
type advResult struct {
	Impl        string  `json:"impl"`
	Attaches    int     `json:"attaches"`
	P50         float64 `json:"p50_ms"` // attach POST sent -> UPDATE received by the feeder
	P99         float64 `json:"p99_ms"`
	RespP50     float64 `json:"response_p50_ms"` // attach POST sent -> HTTP response
	RespP99     float64 `json:"response_p99_ms"`
	BeforeReply int     `json:"update_before_response"` // UPDATEs that arrived before the HTTP response
	Err         string  `json:"error,omitempty"`
}

// port i of the attach scenarios: E-VPN instances of 100 ports each, each
// instance with a route target of its own (attachRT).
func portRequest(i int, prefix string) (instance, mac string, ip netip.Addr, ifname string) {
	instance = fmt.Sprintf("%s-%d", prefix, i/100)
	mac = fmt.Sprintf("52:54:01:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))
	ip = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
	ifname = fmt.Sprintf("tap%d", i)
	return
}

// percentile returns the p-th percentile (nearest rank) in milliseconds.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// startWithSession starts a daemon peering with the feeder and waits for
// the session.
func startWithSession(ctx context.Context, fe *feeder, im impl, dir string) (*daemon, *session, error) {
	quiesce()
	fe.expect(im.addr)
	d, err := startDaemon(ctx, im, daemonConfig{peer: fe.addr, bgpPort: fe.port, rtc: true}, dir)
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := fe.session(sctx, im.addr)
	if err != nil {
		d.stop()
		return nil, nil, err
	}
	return d, s, nil
}

// runAttach measures scenario 3: ports attached then detached through the
// REST API, first by one client, then by several concurrent clients; one
// connection per request, as the reference's clients do. The daemon peers
// with the feeder, so every attach is also advertised over BGP.
func runAttach(ctx context.Context, fe *feeder, im impl, cfg *config, dir string) []attachResult {
	var out []attachResult
	d, s, err := startWithSession(ctx, fe, im, dir)
	if err != nil {
		return []attachResult{{Impl: im.name, Clients: 1, Ports: cfg.attachPorts, Err: err.Error()}}
	}
	defer d.stop()
	defer s.close()
	for _, clients := range []int{1, cfg.attachClients} {
		r := attachDetach(ctx, d, im, cfg.attachPorts, clients)
		out = append(out, r)
	}
	return out
}

// attachRT is the route target of the instance of port i.
func attachRT(i int) uint32 { return uint32(100 + i/100) }

func attachDetach(ctx context.Context, d *daemon, im impl, ports, clients int) attachResult {
	r := attachResult{Impl: im.name, Clients: clients, Ports: ports}
	phase := func(path string) ([]time.Duration, time.Duration, error) {
		lat := make([]time.Duration, ports)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		next := make(chan int)
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					inst, mac, ip, ifname := portRequest(i, "bench-att")
					dt, err := d.post(ctx, path, attachRequestRT("evpn", inst, mac, ip, ifname, attachRT(i)))
					lat[i] = dt
					if err != nil {
						mu.Lock()
						r.Failed++
						if first == nil {
							first = fmt.Errorf("port %d: %w", i, err)
						}
						mu.Unlock()
					}
				}
			}()
		}
		for i := range ports {
			next <- i
		}
		close(next)
		wg.Wait()
		return lat, time.Since(start), first
	}
	lat, total, err := phase("/attach_localport")
	r.AttachRate = float64(ports) / total.Seconds()
	r.AttachP50, r.AttachP99 = percentile(lat, 50), percentile(lat, 99)
	if err != nil {
		r.Err = "attach: " + err.Error()
	}
	lat, total, err = phase("/detach_localport")
	r.DetachRate = float64(ports) / total.Seconds()
	r.DetachP50, r.DetachP99 = percentile(lat, 50), percentile(lat, 99)
	if err != nil && r.Err == "" {
		r.Err = "detach: " + err.Error()
	}
	return r
}

// runAdv measures scenario 4: for each attach of a new port into an
// existing E-VPN instance, the time from the POST being sent to the UPDATE
// advertising its MAC arriving at the feeder.
func runAdv(ctx context.Context, fe *feeder, im impl, cfg *config, dir string) advResult {
	r := advResult{Impl: im.name, Attaches: cfg.advAttaches}
	d, s, err := startWithSession(ctx, fe, im, dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer d.stop()
	defer s.close()
	// The instance exists before the timed attaches.
	inst, mac, ip, ifname := portRequest(0, "bench-adv")
	ch := s.await(mac)
	if _, err := d.post(ctx, "/attach_localport", attachRequest("evpn", inst, mac, ip, ifname)); err != nil {
		r.Err = err.Error()
		return r
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		r.Err = "first route never advertised"
		return r
	}
	time.Sleep(200 * time.Millisecond)
	var lat, resp []time.Duration
	for i := 1; i <= cfg.advAttaches; i++ {
		_, mac, ip, ifname := portRequest(i, "bench-adv")
		ch := s.await(mac)
		t0 := time.Now()
		dt, err := d.post(ctx, "/attach_localport", attachRequest("evpn", inst, mac, ip, ifname))
		if err != nil {
			r.Err = err.Error()
			return r
		}
		select {
		case t := <-ch:
			lat = append(lat, t.Sub(t0))
			resp = append(resp, dt)
			if t.Sub(t0) <= dt {
				r.BeforeReply++
			}
		case <-time.After(10 * time.Second):
			s.forget(mac)
			r.Err = errors.New("UPDATE not received within 10 s").Error()
			return r
		}
	}
	r.P50, r.P99 = percentile(lat, 50), percentile(lat, 99)
	r.RespP50, r.RespP99 = percentile(resp, 50), percentile(resp, 99)
	return r
}
