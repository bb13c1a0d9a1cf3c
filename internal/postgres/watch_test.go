package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/verify"
)

// replicas opens two stores on one database, as two latchkey replicas
// would: a, through which the test writes with a manage.Service, and b,
// whose index a Watcher keeps current. It returns once the watcher is
// ready.
type replicas struct {
	dbURL string
	a     *postgres.Store
	svc   *manage.Service
	b     *postgres.Store
	ix    *verify.Index
	w     *postgres.Watcher
}

func startReplicas(t *testing.T, opts postgres.WatchOptions) *replicas {
	t.Helper()
	r := &replicas{dbURL: newDatabase(t)}
	r.a = openDB(t, r.dbURL)
	r.b = openDB(t, r.dbURL)
	r.svc = manage.New(r.a, verify.NewIndex(), nil)
	if _, err := r.svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.ix = verify.NewIndex()
	r.w = r.b.NewWatcher(r.ix, opts)
	if r.w.Ready() {
		t.Error("watcher ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		if r.w.Ready() {
			t.Error("watcher still ready after Run returned")
		}
	})
	waitFor(t, 5*time.Second, "the watcher to be ready", r.w.Ready)
	return r
}

// waitFor polls cond until it holds or within passes: the change feed is
// asynchronous by nature, so its tests wait for an outcome with a deadline.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// status returns "absent", "Active" or "Inactive" for id in ix.
func status(ix *verify.Index, id string) string {
	e := ix.Get(id)
	switch {
	case e == nil:
		return "absent"
	case e.Active:
		return string(latchkey.StatusActive)
	}
	return string(latchkey.StatusInactive)
}

func TestWatcherFollowsChanges(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: time.Hour}) // only notifications count here
	ctx := t.Context()
	sys := latchkey.System()
	if _, err := r.svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	// The bootstrap key was loaded by the initial sync.
	if n := r.ix.Len(); n != 1 {
		t.Errorf("index has %d keys after the initial sync, want the bootstrap key", n)
	}

	k, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	inactive := latchkey.StatusInactive
	active := latchkey.StatusActive
	expiry := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	steps := []struct {
		name   string
		change func(t *testing.T)
		want   func() bool
	}{
		{"create", func(t *testing.T) {}, func() bool { return status(r.ix, k.ID) == "Active" }},
		{"deactivate", func(t *testing.T) {
			_, err := r.svc.UpdateAccessKey(ctx, sys, k.ID, latchkey.AccessKeyUpdate{Status: &inactive})
			if err != nil {
				t.Fatal(err)
			}
		}, func() bool { return status(r.ix, k.ID) == "Inactive" }},
		{"reactivate with expiry", func(t *testing.T) {
			_, err := r.svc.UpdateAccessKey(ctx, sys, k.ID, latchkey.AccessKeyUpdate{Status: &active, ExpiresAt: &expiry})
			if err != nil {
				t.Fatal(err)
			}
		}, func() bool { e := r.ix.Get(k.ID); return e != nil && e.Active && e.ExpiresAt == expiry.UnixNano() }},
		{"exposed and deactivated", func(t *testing.T) {
			if _, err := r.svc.MarkExposed(ctx, sys, k.ID, "a test", true); err != nil {
				t.Fatal(err)
			}
		}, func() bool { return status(r.ix, k.ID) == "Inactive" }},
		{"delete", func(t *testing.T) {
			if err := r.svc.DeleteAccessKey(ctx, sys, k.ID, false); err != nil {
				t.Fatal(err)
			}
		}, func() bool { return status(r.ix, k.ID) == "absent" }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change(t)
			waitFor(t, time.Second, "the change to reach the other replica's index", st.want)
		})
	}

	t.Run("principal role and deletion", func(t *testing.T) {
		p, err := r.svc.CreatePrincipal(ctx, sys, latchkey.DefaultAccount, "alice", latchkey.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		id := p.AccessKey.ID
		waitFor(t, time.Second, "the principal's key", func() bool { e := r.ix.Get(id); return e != nil && e.Role == latchkey.RoleViewer })
		// No Tx method changes a role yet; the trigger covers a change made
		// in SQL, or by a later version.
		if _, err := r.a.Pool().Exec(ctx, `UPDATE principals SET role = 'admin' WHERE name = 'alice'`); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Second, "the new role", func() bool { e := r.ix.Get(id); return e != nil && e.Role == latchkey.RoleAdmin })
		if err := r.svc.DeletePrincipal(ctx, sys, latchkey.DefaultAccount, "alice"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Second, "the principal's key to go", func() bool { return r.ix.Get(id) == nil })
	})

	if got := r.w.Resyncs(); got != 1 {
		t.Errorf("%d resyncs, want only the initial one", got)
	}
}

// missChange changes a key's status without firing the triggers, as if
// its notification had been lost.
func missChange(t *testing.T, dbURL, id string, st latchkey.Status) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// In the replica role, ordinary triggers do not fire.
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE access_keys SET status = $1 WHERE id = $2`, string(st), id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWatcherResyncRepairs(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: 200 * time.Millisecond})
	ctx := t.Context()
	sys := latchkey.System()
	if _, err := r.svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the new key", func() bool { return status(r.ix, k.ID) == "Active" })

	t.Run("missed notification", func(t *testing.T) {
		missChange(t, r.dbURL, k.ID, latchkey.StatusInactive)
		waitFor(t, 2*time.Second, "a resync to load the missed change", func() bool { return status(r.ix, k.ID) == "Inactive" })
	})
	t.Run("index lost a key", func(t *testing.T) {
		r.ix.Delete(k.ID)
		waitFor(t, 2*time.Second, "a resync to restore the key", func() bool { return status(r.ix, k.ID) == "Inactive" })
	})
	t.Run("index kept a deleted key", func(t *testing.T) {
		ghost := *k.AccessKey
		ghost.ID = "LKIAAAAAAAAAAAAAAAAA"
		ghost.SecretDigest[0]++
		r.ix.Put(&ghost)
		waitFor(t, 2*time.Second, "a resync to drop the key", func() bool { return r.ix.Get(ghost.ID) == nil })
	})
}

func TestWatcherResyncOnRequest(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: time.Hour})
	before := r.w.Resyncs()
	if _, err := r.a.Pool().Exec(t.Context(), `SELECT pg_notify($1, '*')`, postgres.Channel); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "a resync", func() bool { return r.w.Resyncs() > before })
}

// listenerPIDs returns the server processes listening on the database:
// the watcher's connection.
func listenerPIDs(t *testing.T, s *postgres.Store) []int {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+postgres.Channel+`'`)
	if err != nil {
		t.Fatalf("finding the listening connection: %v", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("finding the listening connection: %v", err)
	}
	return pids
}

func TestWatcherReconnects(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: time.Hour, MaxRetryDelay: 200 * time.Millisecond})
	ctx := t.Context()
	sys := latchkey.System()
	if _, err := r.svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the new key", func() bool { return status(r.ix, k.ID) == "Active" })
	resyncs := r.w.Resyncs()

	// A change that sends no notification, then the connection is cut:
	// only the resync that follows the reconnection can load the change.
	missChange(t, r.dbURL, k.ID, latchkey.StatusInactive)
	pids := listenerPIDs(t, r.a)
	if len(pids) != 1 {
		t.Fatalf("listening connections: %v, want one", pids)
	}
	pid := pids[0]
	var ok bool
	if err := r.a.Pool().QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminating the listener: %v, %v", ok, err)
	}
	waitFor(t, 5*time.Second, "the watcher to reconnect and resync", func() bool {
		return r.w.Resyncs() > resyncs && r.w.Ready()
	})
	if got := status(r.ix, k.ID); got != "Inactive" {
		t.Errorf("after reconnecting the key is %s, want Inactive", got)
	}
	waitFor(t, 5*time.Second, "one listening connection, a new one", func() bool {
		pids := listenerPIDs(t, r.a)
		return len(pids) == 1 && pids[0] != pid
	})

	// Notifications flow again.
	if err := r.svc.DeleteAccessKey(ctx, sys, k.ID, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the deletion", func() bool { return status(r.ix, k.ID) == "absent" })
}

// TestWatcherNotReadyWhileDown checks readiness: false while the database
// refuses connections, true again once it is back.
func TestWatcherNotReadyWhileDown(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: time.Hour, MaxRetryDelay: 100 * time.Millisecond})
	ctx := t.Context()
	admin := connectAdmin(t)
	defer admin.Close(context.Background())
	name := must(pgx.ParseConfig(r.dbURL)).Database
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the watcher to be not ready", func() bool { return !r.w.Ready() })
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the watcher to be ready again", r.w.Ready)
}
