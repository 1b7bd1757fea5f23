package api

import (
	"net/http"
	"testing"
)

// FuzzAttachDetach sends arbitrary bodies to attach and detach on the real
// stack (manager, engine, dummy drivers). Whatever the input, the answer is
// a 200 or a client error (400, 413), never a 500 or a panic, and a
// rejected request leaves the state unchanged.
func FuzzAttachDetach(f *testing.F) {
	for _, c := range attachBadCases {
		f.Add(c.body, false)
	}
	for _, c := range detachBadCases {
		f.Add(c.body, true)
	}
	for _, ex := range referenceExamples {
		f.Add(ex.body, false)
		f.Add(ex.body, true)
	}
	f.Add(ipvpnBase, false)
	f.Add(evpnBase, false)
	s := newStack(f)
	f.Fuzz(func(t *testing.T, body string, detach bool) {
		s.t = t
		path := "/attach_localport"
		if detach {
			path = "/detach_localport"
		}
		before := s.state()
		r := do(t, s.srv, "POST", path, body)
		switch r.status {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if msg := errorMessage(t, r); msg == "" {
				t.Fatalf("%d without an error message: %s", r.status, r.body)
			}
			if after := s.state(); after != before {
				t.Fatalf("rejected request changed the state: %s", body)
			}
		default:
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
	})
}
