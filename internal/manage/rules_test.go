package manage_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/keyformat"
)

func TestKeyLimit(t *testing.T) {
	for _, max := range []int{1, 2, 3} {
		t.Run("max "+string(rune('0'+max)), func(t *testing.T) {
			e := newEnv(t)
			e.svc.MaxKeysPerApplication = max
			e.app(t, "default", "billing")
			var keys []*manage.CreatedKey
			for range max {
				keys = append(keys, e.key(t, "default", "billing"))
			}
			_, err := e.svc.CreateAccessKey(t.Context(), e.admin, "default", "billing", latchkey.NewAccessKey{})
			wantCode(t, err, latchkey.ELIMIT)
			// The rotation: deactivate, delete, then there is room again.
			e.deactivate(t, keys[0].ID)
			if err := e.svc.DeleteAccessKey(t.Context(), e.admin, keys[0].ID, false); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.CreateAccessKey(t.Context(), e.admin, "default", "billing", latchkey.NewAccessKey{}); err != nil {
				t.Fatalf("after a delete: %v", err)
			}
			// Principals are held to the same number.
			for range max - 1 {
				if _, err := e.svc.CreatePrincipalKey(t.Context(), e.admin, "default", "victor", ""); err != nil {
					t.Fatal(err)
				}
			}
			_, err = e.svc.CreatePrincipalKey(t.Context(), e.admin, "default", "victor", "")
			wantCode(t, err, latchkey.ELIMIT)
		})
	}
}

func TestDeleteRules(t *testing.T) {
	e := newEnv(t)
	e.app(t, "default", "billing")
	active := e.key(t, "default", "billing")
	forced := e.key(t, "default", "billing")
	ctx := t.Context()

	wantCode(t, e.svc.DeleteAccessKey(ctx, e.admin, active.ID, false), latchkey.EKEYACTIVE)
	if e.ix.Get(active.ID) == nil || e.storedKey(t, active.ID) == nil {
		t.Fatal("a refused delete removed the key")
	}
	wantCode(t, e.svc.DeleteApplication(ctx, e.admin, "default", "billing"), latchkey.ECONFLICT)

	if err := e.svc.DeleteAccessKey(ctx, e.admin, forced.ID, true); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	e.deactivate(t, active.ID)
	if err := e.svc.DeleteAccessKey(ctx, e.admin, active.ID, false); err != nil {
		t.Fatalf("delete of an Inactive key: %v", err)
	}
	for _, id := range []string{active.ID, forced.ID} {
		if e.ix.Get(id) != nil || e.storedKey(t, id) != nil {
			t.Errorf("deleted key %s still in the index or the store", id)
		}
	}
	if err := e.svc.DeleteApplication(ctx, e.admin, "default", "billing"); err != nil {
		t.Fatalf("delete of an application without keys: %v", err)
	}
	wantCode(t, e.svc.DeleteAccessKey(ctx, e.admin, active.ID, true), latchkey.ENOTFOUND)
	wantCode(t, e.svc.DeleteAccessKey(ctx, e.admin, "not-an-id", true), latchkey.ENOTFOUND)

	// Principals.
	wantCode(t, e.svc.DeletePrincipal(ctx, e.admin, "default", "alice"), latchkey.ECONFLICT)
	wantCode(t, e.svc.DeletePrincipal(ctx, e.admin, "default", "admin"), latchkey.EFORBIDDEN)
	wantCode(t, e.svc.DeletePrincipal(ctx, e.admin, "default", "ghost"), latchkey.ENOTFOUND)
	extra, err := e.svc.CreatePrincipalKey(ctx, e.admin, "default", "victor", "second")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeletePrincipal(ctx, e.admin, "default", "victor"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{e.viewer.AccessKeyID, extra.ID} {
		if e.ix.Get(id) != nil || e.storedKey(t, id) != nil {
			t.Errorf("key %s of a deleted principal is still in the index or the store", id)
		}
	}
}

func TestExpiryRules(t *testing.T) {
	e := newEnv(t)
	e.app(t, "default", "billing")
	k := e.key(t, "default", "billing")
	ctx := t.Context()
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	tests := []struct {
		name   string
		expiry *time.Time
		code   string
	}{
		{"in the past", at(-time.Hour), latchkey.EINVALID},
		{"now", at(0), latchkey.EINVALID},
		{"below a microsecond from now", at(999 * time.Nanosecond), latchkey.EINVALID},
		{"a microsecond from now", at(time.Microsecond), ""},
		{"next year", at(365 * 24 * time.Hour), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.app(t, "default", "app-"+strings.ReplaceAll(tc.name, " ", "-"))
			created, err := e.svc.CreateAccessKey(ctx, e.admin, "default", "app-"+strings.ReplaceAll(tc.name, " ", "-"),
				latchkey.NewAccessKey{ExpiresAt: tc.expiry})
			wantCode(t, err, tc.code)
			_, err = e.svc.UpdateAccessKey(ctx, e.admin, k.ID, latchkey.AccessKeyUpdate{ExpiresAt: tc.expiry})
			wantCode(t, err, tc.code)
			if tc.code == "" {
				got := e.storedKey(t, created.ID).ExpiresAt
				if got == nil || !got.Equal(tc.expiry.Truncate(time.Microsecond)) {
					t.Errorf("stored expiry %v, want %v", got, tc.expiry)
				}
				if e.ix.Get(created.ID).ExpiresAt != got.UnixNano() {
					t.Error("index expiry differs from the store's")
				}
			}
		})
	}
	// A non-UTC expiry is stored in UTC.
	local := time.Date(2027, 1, 1, 9, 0, 0, 0, time.FixedZone("X", 3600))
	u, err := e.svc.UpdateAccessKey(ctx, e.admin, k.ID, latchkey.AccessKeyUpdate{ExpiresAt: &local})
	if err != nil || u.ExpiresAt.Location() != time.UTC || !u.ExpiresAt.Equal(local) {
		t.Errorf("UpdateAccessKey = %v, %v", u.ExpiresAt, err)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	e.app(t, "default", "billing")
	k := e.key(t, "default", "billing")
	ctx := t.Context()
	long := strings.Repeat("d", latchkey.MaxDescriptionLen+1)
	okLen := strings.Repeat("d", latchkey.MaxDescriptionLen)
	descCases := []struct {
		name string
		desc string
		code string
	}{
		{"empty", "", ""},
		{"at the limit", okLen, ""},
		{"over the limit", long, latchkey.EINVALID},
		{"NUL byte", "a\x00b", latchkey.EINVALID},
		{"invalid UTF-8", "a\xffb", latchkey.EINVALID},
		{"unicode", "Zürich → 東京", ""},
	}
	for i, tc := range descCases {
		t.Run("description "+tc.name, func(t *testing.T) {
			name := "d" + string(rune('a'+i))
			_, err := e.svc.CreateApplication(ctx, e.admin, "default", name, tc.desc, nil)
			wantCode(t, err, tc.code)
			_, err = e.svc.UpdateApplication(ctx, e.admin, "default", "billing", &tc.desc, nil)
			wantCode(t, err, tc.code)
			_, err = e.svc.UpdateAccessKey(ctx, e.admin, k.ID, latchkey.AccessKeyUpdate{Description: &tc.desc})
			wantCode(t, err, tc.code)
			_, err = e.svc.CreatePrincipalKey(ctx, e.operator, "other", "olga", tc.desc)
			wantCode(t, err, tc.code)
			if err == nil {
				keys, _, _ := e.svc.ListAccessKeys(ctx, e.operator, latchkey.AccessKeyFilter{Account: "other", Principal: "olga"})
				for _, pk := range keys {
					if pk.ID != e.otherAdmin.AccessKeyID {
						e.deactivate(t, pk.ID)
						if err := e.svc.DeleteAccessKey(ctx, e.operator, pk.ID, false); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			e.app(t, "default", name+"-k")
			_, err = e.svc.CreateAccessKey(ctx, e.admin, "default", name+"-k", latchkey.NewAccessKey{Description: tc.desc})
			wantCode(t, err, tc.code)
		})
	}

	nameCases := []struct {
		name string
		code string
	}{
		{"a", ""},
		{"A.b-c_d9", ""},
		{strings.Repeat("n", 64), ""},
		{"", latchkey.EINVALID},
		{strings.Repeat("n", 65), latchkey.EINVALID},
		{"-lead", latchkey.EINVALID},
		{".lead", latchkey.EINVALID},
		{"a b", latchkey.EINVALID},
		{"a/b", latchkey.EINVALID},
		{"a%2Fb", latchkey.EINVALID},
		{"zürich", latchkey.EINVALID},
	}
	for _, tc := range nameCases {
		t.Run("name "+tc.name, func(t *testing.T) {
			_, err := e.svc.CreateApplication(ctx, e.admin, "default", tc.name, "", nil)
			wantCode(t, err, tc.code)
			_, err = e.svc.CreatePrincipal(ctx, e.admin, "default", tc.name, latchkey.RoleViewer)
			wantCode(t, err, tc.code)
			_, err = e.svc.CreateAccount(ctx, e.operator, tc.name, latchkey.AccountUpdate{})
			wantCode(t, err, tc.code)
		})
	}

	t.Run("roles", func(t *testing.T) {
		for _, r := range []latchkey.Role{"", "root", "Admin", "owner"} {
			_, err := e.svc.CreatePrincipal(ctx, e.operator, "default", "r-"+string(r), r)
			wantCode(t, err, latchkey.EINVALID)
		}
	})
	t.Run("status", func(t *testing.T) {
		bad := latchkey.Status("Paused")
		_, err := e.svc.UpdateAccessKey(ctx, e.admin, k.ID, latchkey.AccessKeyUpdate{Status: &bad})
		wantCode(t, err, latchkey.EINVALID)
	})
	t.Run("names taken", func(t *testing.T) {
		_, err := e.svc.CreateApplication(ctx, e.admin, "default", "billing", "", nil)
		wantCode(t, err, latchkey.EEXISTS)
		_, err = e.svc.CreatePrincipal(ctx, e.admin, "default", "alice", latchkey.RoleViewer)
		wantCode(t, err, latchkey.EEXISTS)
		_, err = e.svc.CreateAccount(ctx, e.operator, "other", latchkey.AccountUpdate{})
		wantCode(t, err, latchkey.EEXISTS)
		// The same name in another account is another object.
		if _, err := e.svc.CreateApplication(ctx, e.operator, "other", "billing", "", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown owners", func(t *testing.T) {
		_, err := e.svc.CreateAccessKey(ctx, e.admin, "default", "ghost", latchkey.NewAccessKey{})
		wantCode(t, err, latchkey.ENOTFOUND)
		_, err = e.svc.CreatePrincipalKey(ctx, e.admin, "default", "ghost", "")
		wantCode(t, err, latchkey.ENOTFOUND)
		_, err = e.svc.CreateApplication(ctx, e.operator, "nosuch", "x", "", nil)
		wantCode(t, err, latchkey.ENOTFOUND)
		_, err = e.svc.UpdateApplication(ctx, e.admin, "default", "ghost", nil, nil)
		wantCode(t, err, latchkey.ENOTFOUND)
	})
}

// TestStatusStrict: the service takes a status exactly as the API
// documents it. Another case ("inactive", "ACTIVE") or another word is
// EINVALID, and the key, in the store and in the index, is left as it was.
func TestStatusStrict(t *testing.T) {
	e := newEnv(t)
	e.app(t, "default", "billing")
	k := e.key(t, "default", "billing")
	for _, in := range []latchkey.Status{"inactive", "INACTIVE", "ACTIVE", "active", "Paused", ""} {
		st := in
		_, err := e.svc.UpdateAccessKey(t.Context(), e.admin, k.ID, latchkey.AccessKeyUpdate{Status: &st})
		wantCode(t, err, latchkey.EINVALID)
		if got := e.storedKey(t, k.ID).Status; got != latchkey.StatusActive {
			t.Errorf("status %q: stored %q, want Active", in, got)
		}
		if !e.ix.Get(k.ID).Active {
			t.Errorf("status %q: the index says inactive", in)
		}
	}
	st := latchkey.StatusInactive
	got, err := e.svc.UpdateAccessKey(t.Context(), e.admin, k.ID, latchkey.AccessKeyUpdate{Status: &st})
	if err != nil || got.Status != latchkey.StatusInactive || e.ix.Get(k.ID).Active {
		t.Errorf("status Inactive: %v, %v; index active=%v", got, err, e.ix.Get(k.ID).Active)
	}
}

// TestRandomSourceFailure: when the random source fails, the error is
// returned and nothing is written.
func TestRandomSourceFailure(t *testing.T) {
	boom := errors.New("entropy source failed")
	for _, broken := range []string{"NewID", "NewSecret"} {
		t.Run(broken, func(t *testing.T) {
			e := newEnv(t)
			e.app(t, "default", "billing")
			switch broken {
			case "NewID":
				e.svc.NewID = func() (string, error) { return "", boom }
			case "NewSecret":
				e.svc.NewSecret = func() (string, error) { return "", boom }
			}
			events, keys, indexed := len(e.events(t)), e.keyCount(t), e.ix.Len()
			ctx := t.Context()
			ops := []struct {
				name string
				do   func() error
			}{
				{"CreateAccessKey", func() error {
					_, err := e.svc.CreateAccessKey(ctx, e.admin, "default", "billing", latchkey.NewAccessKey{})
					return err
				}},
				{"CreatePrincipal", func() error {
					_, err := e.svc.CreatePrincipal(ctx, e.admin, "default", "pat", latchkey.RoleViewer)
					return err
				}},
				{"CreatePrincipalKey", func() error {
					_, err := e.svc.CreatePrincipalKey(ctx, e.admin, "default", "victor", "")
					return err
				}},
			}
			for _, op := range ops {
				err := op.do()
				if !errors.Is(err, boom) {
					t.Errorf("%s: error %v, want the random source's", op.name, err)
				}
				if code, msg := latchkey.ErrorCode(err), latchkey.ErrorMessage(err); code != latchkey.EINTERNAL || msg != "internal error" {
					t.Errorf("%s: code %q message %q, want InternalError with nothing more", op.name, code, msg)
				}
			}
			if _, err := e.svc.GetPrincipal(ctx, e.admin, "default", "pat"); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("principal created without a key: %v", err)
			}
			if got := len(e.events(t)); got != events {
				t.Errorf("%d audit events written", got-events)
			}
			if got := e.keyCount(t); got != keys {
				t.Errorf("%d keys written", got-keys)
			}
			if got := e.ix.Len(); got != indexed {
				t.Errorf("%d keys indexed", got-indexed)
			}
		})
	}
}

// TestCollisionRetried: a new key whose ID is taken is made again with new
// material, and the error reaches the caller only if that keeps failing.
func TestCollisionRetried(t *testing.T) {
	e := newEnv(t)
	e.app(t, "default", "billing")
	taken := e.key(t, "default", "billing").ID
	calls := 0
	e.svc.NewID = func() (string, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return keyformat.NewID()
	}
	k, err := e.svc.CreateAccessKey(t.Context(), e.admin, "default", "billing", latchkey.NewAccessKey{})
	if err != nil || k.ID == taken || calls != 2 {
		t.Fatalf("CreateAccessKey = %v, %v after %d IDs", k, err, calls)
	}
	e.deactivate(t, k.ID)
	if err := e.svc.DeleteAccessKey(t.Context(), e.admin, k.ID, false); err != nil {
		t.Fatal(err)
	}
	e.svc.NewID = func() (string, error) { return taken, nil }
	before := len(e.events(t))
	_, err = e.svc.CreateAccessKey(t.Context(), e.admin, "default", "billing", latchkey.NewAccessKey{})
	wantCode(t, err, latchkey.EEXISTS)
	if got := len(e.events(t)); got != before {
		t.Errorf("%d audit events for a failed create", got-before)
	}
}

// TestConcurrentCreateAccessKey: ten callers race for the two slots of an
// application; exactly two win.
func TestConcurrentCreateAccessKey(t *testing.T) {
	e := newEnv(t)
	e.app(t, "default", "billing")
	const callers = 10
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			_, err := e.svc.CreateAccessKey(t.Context(), e.admin, "default", "billing", latchkey.NewAccessKey{})
			mu.Lock()
			codes[latchkey.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if codes[""] != 2 || codes[latchkey.ELIMIT] != callers-2 {
		t.Errorf("outcomes %v, want 2 successes and %d LimitExceeded", codes, callers-2)
	}
	keys, _, err := e.svc.ListAccessKeys(t.Context(), e.admin, latchkey.AccessKeyFilter{Account: "default", Application: "billing"})
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d keys stored (%v), want 2", len(keys), err)
	}
	for _, k := range keys {
		if e.ix.Get(k.ID) == nil {
			t.Errorf("key %s stored but not indexed", k.ID)
		}
	}
	app, err := e.svc.GetApplication(t.Context(), e.admin, "default", "billing")
	if err != nil || app.KeyCount != 2 {
		t.Errorf("key count %v, %v", app, err)
	}
}
