package console

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
)

// deleteRace is a server wrapper that makes the wizard's delete race its
// own chart refresh every time: it answers the delete only after several
// refresh intervals (the old page stays on screen meanwhile) and, with
// inFlight, holds one chart request of the old key until the key is
// deleted (a refresh in flight during the delete). It records every chart
// request of the old key that arrives once the key is gone.
type deleteRace struct {
	inFlight bool
	hold     time.Duration // how long the delete's answer waits
	mu       sync.Mutex
	oldID    string
	armed    bool
	holding  bool
	held     chan struct{} // closed when a chart request is being held
	deleted  chan struct{} // closed when the delete is done
	late     []string
}

func newDeleteRace(inFlight bool, hold time.Duration) *deleteRace {
	return &deleteRace{inFlight: inFlight, hold: hold, held: make(chan struct{}), deleted: make(chan struct{})}
}

// arm starts watching the key oldID. With inFlight it holds the key's next
// chart request, and closes held then; without, it closes held at once.
func (d *deleteRace) arm(oldID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.oldID, d.armed = oldID, true
	if !d.inFlight {
		close(d.held)
	}
}

func (d *deleteRace) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		id, armed := d.oldID, d.armed
		d.mu.Unlock()
		if id == "" {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/console/keys/"+id+"/chart":
			select {
			case <-d.deleted:
				d.mu.Lock()
				d.late = append(d.late, r.URL.RequestURI())
				d.mu.Unlock()
			default:
				d.mu.Lock()
				hold := d.inFlight && armed && !d.holding
				d.holding = d.holding || hold
				d.mu.Unlock()
				if hold {
					close(d.held)
					select {
					case <-d.deleted:
					case <-r.Context().Done():
						return // the page gave up on it
					}
				}
			}
		case r.Method == http.MethodPost && r.URL.Path == "/console/keys/"+id+"/delete":
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			close(d.deleted)
			time.Sleep(d.hold)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestBrowserWizardDeleteStopsChart reproduces, every time, the race that
// made TestBrowserConsole fail now and then on a loaded machine: the
// wizard's chart refreshed while the old key was being deleted, asked for
// the chart of a key that was gone, got a 404, and Chromium logged it as a
// console error. With a one-second refresh and the delete's answer three
// and a half seconds late (with, or without, a refresh in flight when
// Delete is pressed), the page must ask for no chart of the deleted key
// and the browser must report no problem.
func TestBrowserWizardDeleteStopsChart(t *testing.T) {
	for _, tt := range []struct {
		name     string
		inFlight bool
	}{
		{"refreshes while the delete is answered", false},
		{"a refresh in flight during the delete", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			race := newDeleteRace(tt.inFlight, 3500*time.Millisecond)
			r := newRig(t, rigOptions{refreshSeconds: 1, wrap: race.wrap})
			old, nk := rotationToDelete(t, r)
			r.signIn()
			r.nav(rotateURL(old, 5, nk))
			r.do(chromedp.SendKeys(chromedp.ID("confirm-delete"), old))
			race.arm(old)
			select {
			case <-race.held:
			case <-time.After(15 * time.Second):
				t.Fatal("the wizard's chart did not refresh within 15 seconds")
			}
			r.submit(`section.step form button.danger`)
			if loc := r.location(); loc != appURL("web") {
				t.Fatalf("after deleting, at %s", loc)
			}
			if _, err := r.svc.GetAccessKey(t.Context(), latchkey.System(), old); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Fatalf("the old key was not deleted (err %v)", err)
			}
			race.mu.Lock()
			late := race.late
			race.mu.Unlock()
			if len(late) > 0 {
				t.Errorf("after the delete the page asked for the deleted key's chart %d times: %v", len(late), late)
			}
			r.checkProblems(nil)
		})
	}
}

// rotationToDelete makes application web with an Inactive old key and a
// new one: a rotation at step 5. It returns the two key IDs.
func rotationToDelete(t *testing.T, r *rig) (oldID, newID string) {
	t.Helper()
	ctx := t.Context()
	sys := latchkey.System()
	if _, err := r.svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, "web", "the web shop", nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, desc := range []string{"old", "new"} {
		k, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "web", latchkey.NewAccessKey{Description: desc})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	inactive := latchkey.StatusInactive
	if _, err := r.svc.UpdateAccessKey(ctx, sys, ids[0], latchkey.AccessKeyUpdate{Status: &inactive}); err != nil {
		t.Fatal(err)
	}
	return ids[0], ids[1]
}
