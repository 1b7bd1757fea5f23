package vpn

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
)

// faultyDriver is the dummy IP VPN driver with failures and blocking on
// demand: instance creations and classifier additions fail, Cleanup and
// SetupRemote wait at a gate.
type faultyDriver struct {
	*dummy.Driver

	mu         sync.Mutex
	failCreate map[string]int // NewIPVPNInstance failures left, by external id
	failAdd    int            // AddClassifier failures left
	created    []string       // external ids of the instances created
	gates      map[string]*gate
}

// gate blocks a dataplane call until opened; entered is closed when a
// call waits at it.
type gate struct {
	entered  chan struct{}
	open     chan struct{}
	once     sync.Once
	openOnce sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) wait() {
	g.once.Do(func() { close(g.entered) })
	<-g.open
}

func (g *gate) release() { g.openOnce.Do(func() { close(g.open) }) }

var errInjected = errors.New("injected dataplane failure")

func newFaultyDriver(d *dummy.Driver) *faultyDriver {
	return &faultyDriver{Driver: d, failCreate: map[string]int{}, gates: map[string]*gate{}}
}

// setGate blocks the calls op ("cleanup", "setup") of the instance of an
// external id until the gate returned is released.
func (d *faultyDriver) setGate(op, externalID string) *gate {
	g := newGate()
	d.mu.Lock()
	d.gates[op+" "+externalID] = g
	d.mu.Unlock()
	return g
}

func (d *faultyDriver) pass(op, externalID string) {
	d.mu.Lock()
	g := d.gates[op+" "+externalID]
	d.mu.Unlock()
	if g != nil {
		g.wait()
	}
}

func (d *faultyDriver) failNextCreate(externalID string) {
	d.mu.Lock()
	d.failCreate[externalID]++
	d.mu.Unlock()
}

func (d *faultyDriver) failNextAdd() {
	d.mu.Lock()
	d.failAdd++
	d.mu.Unlock()
}

func (d *faultyDriver) createdIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.created...)
}

func (d *faultyDriver) NewIPVPNInstance(ctx context.Context, cfg dataplane.InstanceConfig) (dataplane.IPVPNInstance, error) {
	d.mu.Lock()
	if d.failCreate[cfg.ExternalID] > 0 {
		d.failCreate[cfg.ExternalID]--
		d.mu.Unlock()
		return nil, errInjected
	}
	d.created = append(d.created, cfg.ExternalID)
	d.mu.Unlock()
	in, err := d.Driver.NewIPVPNInstance(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &faultyInstance{Instance: in.(*dummy.Instance), d: d, id: cfg.ExternalID}, nil
}

type faultyInstance struct {
	*dummy.Instance
	d  *faultyDriver
	id string
}

func (i *faultyInstance) AddClassifier(ctx context.Context, c route.Classifier, redirectTo uint32) error {
	i.d.mu.Lock()
	fail := i.d.failAdd > 0
	if fail {
		i.d.failAdd--
	}
	i.d.mu.Unlock()
	if fail {
		return errInjected
	}
	return i.Instance.AddClassifier(ctx, c, redirectTo)
}

func (i *faultyInstance) SetupRemote(ctx context.Context, r dataplane.Remote) error {
	i.d.pass("setup", i.id)
	return i.Instance.SetupRemote(ctx, r)
}

func (i *faultyInstance) Cleanup(ctx context.Context) error {
	i.d.pass("cleanup", i.id)
	return i.Instance.Cleanup(ctx)
}

// newFaultySteerFixture returns a fixture with the faulty IP VPN driver,
// retrying failed redirections after retry (then twice as long each time).
func newFaultySteerFixture(t *testing.T, retry time.Duration) (*steerFixture, *faultyDriver) {
	var fd *faultyDriver
	base := newFixtureWith(t, false, func(d *dummy.Driver) dataplane.Driver {
		fd = newFaultyDriver(d)
		return fd
	})
	base.m.redirRetryMin, base.m.redirRetryMax = retry, 4*retry
	f := &steerFixture{fixture: base, peer: newFakePeer("BGP-peer"), ctx: context.Background()}
	f.eng.Subscribe(f.peer, engine.Match{})
	return f, fd
}

// eventually waits until cond holds (retries run on a timer).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A VRF goroutine still running while Shutdown stops the instances must
// not create a redirection VRF that nothing stops.
func TestShutdownRefusesRedirectionVRF(t *testing.T) {
	f, fd := newFaultySteerFixture(t, time.Millisecond)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	g := fd.setGate("setup", "v")
	defer g.release()
	// The VRF goroutine waits in a dataplane call...
	f.eng.Publish(f.peer, []route.Event{{Kind: route.Advertise, Route: received("1.1.1.1/32", 1, 100, nh1, []route.RT{rt1})}})
	<-g.entered
	// ... with a route and a Flowspec redirection queued behind it.
	f.eng.Publish(f.peer, []route.Event{
		{Kind: route.Advertise, Route: received("2.2.2.2/32", 2, 200, nh1, []route.RT{rt1})},
		{Kind: route.Advertise, Route: f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5)},
	})
	syncCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.eng.Sync(syncCtx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.m.Shutdown(context.Background())
	}()
	eventually(t, "Shutdown takes the instances", func() bool { return f.m.Instance("v") == nil })
	g.release()
	<-done
	if n := f.m.InstanceCount(); n != 0 {
		t.Fatalf("%d instances after Shutdown: %v", n, f.m.Instances())
	}
	for _, id := range fd.createdIDs() {
		if id == RedirectInstanceID(rt5) {
			t.Fatal("a redirection VRF was created during Shutdown")
		}
	}
}

// Shutdown waits for the removal of redirection VRFs in progress.
func TestShutdownWaitsForBackgroundRemovals(t *testing.T) {
	f, fd := newFaultySteerFixture(t, time.Millisecond)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	fl := f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5)
	f.send(route.Advertise, fl)
	r := f.redirectVRF(rt5)
	if r == nil {
		t.Fatal("no redirection VRF")
	}
	g := fd.setGate("cleanup", r.ExternalID)
	defer g.release()
	// The last use goes: the redirection VRF is removed in the background
	// and waits in its dataplane cleanup.
	f.eng.Publish(f.peer, []route.Event{{Kind: route.Withdraw, Route: fl}})
	<-g.entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.m.Shutdown(context.Background())
	}()
	stopping := func() bool {
		f.m.mu.Lock()
		defer f.m.mu.Unlock()
		return f.m.stopping
	}
	for released := false; ; {
		select {
		case <-done:
			if !dp(t, r).Cleaned() {
				t.Fatal("Shutdown returned while a redirection VRF was being removed")
			}
			return
		case <-time.After(time.Millisecond):
			if !released && stopping() {
				g.release()
				released = true
			}
		}
	}
}

// A redirection VRF that could not be created is created again on the
// next event of its classifier, and by the retry timer.
func TestRedirectAcquireRetried(t *testing.T) {
	f, fd := newFaultySteerFixture(t, time.Hour) // no timer: the next event retries
	f.ipvpn.SetECMP(true)                        // the second route of a rule is a best path too
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	fd.failNextCreate(RedirectInstanceID(rt5))
	f.send(route.Advertise, f.receivedFlow(tc("1.1.1.1/32"), 1, nh1, []route.RT{rt1}, rt5))
	if _, ok := dp(t, v).Redirect(tc("1.1.1.1/32")); ok && f.redirectVRF(rt5) == nil {
		t.Fatal("classifier installed without redirection VRF")
	}
	// A second service node advertises the same rule.
	f.send(route.Advertise, f.receivedFlow(tc("1.1.1.1/32"), 2, nh2, []route.RT{rt1}, rt5))
	r5 := f.redirectVRF(rt5)
	if r5 == nil {
		t.Fatal("redirection VRF not created on the next event of its classifier")
	}
	if to, ok := dp(t, v).Redirect(tc("1.1.1.1/32")); !ok || to != r5.ID {
		t.Fatalf("classifiers %v, want redirection to %d", dp(t, v).Classifiers(), r5.ID)
	}

	// A failed classifier addition is retried on the next event too.
	fd.failNextAdd()
	f.send(route.Advertise, f.receivedFlow(tc("3.3.3.3/32"), 5, nh1, []route.RT{rt1}, rt5))
	if _, ok := dp(t, v).Redirect(tc("3.3.3.3/32")); ok {
		t.Fatal("classifier installed although its addition failed")
	}
	f.send(route.Advertise, f.receivedFlow(tc("3.3.3.3/32"), 6, nh2, []route.RT{rt1}, rt5))
	if to, ok := dp(t, v).Redirect(tc("3.3.3.3/32")); !ok || to != r5.ID {
		t.Fatalf("classifiers %v, want 3.3.3.3 redirected to %d", dp(t, v).Classifiers(), r5.ID)
	}
}

// Failed redirections are retried by a timer when no event comes.
func TestRedirectRetryTimer(t *testing.T) {
	f, fd := newFaultySteerFixture(t, time.Millisecond)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	fd.failNextCreate(RedirectInstanceID(rt6))
	fd.failNextCreate(RedirectInstanceID(rt6)) // and its first retry
	f.send(route.Advertise, f.receivedFlow(tc("2.2.2.2/32"), 3, nh1, []route.RT{rt1}, rt6))
	eventually(t, "redirection to RT6 installed", func() bool {
		r6 := f.redirectVRF(rt6)
		if r6 == nil {
			return false
		}
		to, ok := dp(t, v).Redirect(tc("2.2.2.2/32"))
		return ok && to == r6.ID
	})

	r6 := f.redirectVRF(rt6)

	// A failed classifier addition.
	fd.failNextAdd()
	f.send(route.Advertise, f.receivedFlow(tc("3.3.3.3/32"), 4, nh1, []route.RT{rt1}, rt6))
	eventually(t, "classifier installed after a failed addition", func() bool {
		to, ok := dp(t, v).Redirect(tc("3.3.3.3/32"))
		return ok && to == r6.ID
	})
}

// A failed replacement of a classifier's redirection does not leave it
// pointing at the redirection VRF being released; it is retried.
func TestRedirectFailedReplacement(t *testing.T) {
	f, fd := newFaultySteerFixture(t, time.Millisecond)
	f.ipvpn.SetECMP(true)
	f.attach(vrfReq("52:54:00:00:00:01", "10.0.0.1", "tap1"))
	v := f.m.Instance("v")
	c := tc("1.1.1.1/32")
	a := f.receivedFlow(c, 1, nh1, []route.RT{rt1}, rt5)
	b := f.receivedFlow(c, 2, nh2, []route.RT{rt1}, rt6)
	f.send(route.Advertise, a)
	f.send(route.Advertise, b)
	r5, r6 := f.redirectVRF(rt5), f.redirectVRF(rt6)
	if to, _ := dp(t, v).Redirect(c); r5 == nil || r6 == nil || to != r5.ID {
		t.Fatalf("setup: classifiers %v", dp(t, v).Classifiers())
	}
	fd.failNextAdd()
	f.send(route.Withdraw, a)
	if f.redirectVRF(rt5) != nil || !dp(t, r5).Cleaned() {
		t.Fatal("the redirection VRF of RT5 is still there")
	}
	if to, ok := dp(t, v).Redirect(c); ok && to != r6.ID {
		t.Fatalf("classifier redirects to %d, a removed VRF (RT6's is %d)", to, r6.ID)
	}
	eventually(t, "classifier redirected to RT6", func() bool {
		to, ok := dp(t, v).Redirect(c)
		return ok && to == r6.ID
	})
	f.send(route.Withdraw, b)
	if len(dp(t, v).Classifiers()) != 0 || f.redirectVRF(rt6) != nil {
		t.Fatalf("left over: classifiers %v", dp(t, v).Classifiers())
	}
}
