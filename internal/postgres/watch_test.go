package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
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
		waitFor(t, time.Second, "the principal's key", func() bool { e := r.ix.Get(id); return e != nil && e.Role() == latchkey.RoleViewer })
		// No Tx method changes a role yet; the trigger covers a change made
		// in SQL, or by a later version.
		if _, err := r.a.Pool().Exec(ctx, `UPDATE principals SET role = 'admin' WHERE name = 'alice'`); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Second, "the new role", func() bool { e := r.ix.Get(id); return e != nil && e.Role() == latchkey.RoleAdmin })
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

// racingIndex is a replica's index with a hook: on the first reload of key
// id, right after the watcher has read that key from the database, race
// runs, and done is closed once that reload has been applied.
type racingIndex struct {
	*verify.Index
	id   string
	race func()
	done chan struct{}
	once sync.Once
}

func (r *racingIndex) Reload(id string, load func() (*latchkey.AccessKey, error)) error {
	first := false
	err := r.Index.Reload(id, func() (*latchkey.AccessKey, error) {
		k, err := load()
		if id == r.id {
			r.once.Do(func() { first = true; r.race() })
		}
		return k, err
	})
	if first {
		close(r.done)
	}
	return err
}

// TestWatcherDoesNotUndoLocalChanges: the watcher handles the notification
// of a key's creation by reading the key; before it applies what it read,
// this same replica deletes the key (commits, and updates its index). The
// stale read must not bring the key back: it used to, until the delete's
// own notification was handled, so that a key could verify again after
// its DeleteAccessKey had returned (the crash test caught it as INACTIVE
// for a deleted key).
func TestWatcherDoesNotUndoLocalChanges(t *testing.T) {
	dbURL := newDatabase(t)
	store := openDB(t, dbURL)
	ctx := t.Context()
	sys := latchkey.System()
	ix := verify.NewIndex()
	ri := &racingIndex{Index: ix, done: make(chan struct{})}
	svc := manage.New(store, ix, nil) // this replica's writes update ix after commit
	if _, err := svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	w := store.NewWatcher(ri, postgres.WatchOptions{Resync: time.Hour})
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(wctx) }()
	waitFor(t, 5*time.Second, "the watcher to be ready", w.Ready)

	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	ri.id = id
	ri.race = func() {
		if err := svc.DeleteAccessKey(ctx, sys, id, true); err != nil {
			t.Errorf("delete during the reload: %v", err)
		}
	}
	svc.NewID = func() (string, error) { return id, nil }
	if _, err := svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ri.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not reload the new key")
	}
	if got := status(ix, id); got != "absent" {
		t.Fatalf("after the watcher applied a read older than this replica's delete, the key is %s in the index, want absent", got)
	}
}

// TestWatcherReadsBesideAFullPool checks that a notified change reaches the
// index while every connection of the replica's pool is taken (by a usage
// flush, leases, management calls): the watcher re-reads keys on a
// connection of its own.
func TestWatcherReadsBesideAFullPool(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: time.Hour})
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

	pool := r.b.Pool()
	for range pool.Stat().MaxConns() {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	inactive := latchkey.StatusInactive
	if _, err := r.svc.UpdateAccessKey(ctx, sys, k.ID, latchkey.AccessKeyUpdate{Status: &inactive}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the deactivation with the pool full", func() bool { return status(r.ix, k.ID) == "Inactive" })

	// The watcher says when it took, read and applied the change.
	var got *postgres.ChangeTiming
	for _, c := range r.w.Timings() {
		if c.ID == k.ID {
			got = &c
		}
	}
	if got == nil {
		t.Fatalf("Timings() holds no entry for %s", k.ID)
	}
	if got.Taken.IsZero() || got.Read.Before(got.Taken) || got.Applied.Before(got.Read) {
		t.Errorf("timings of %s out of order: taken %v, read %v, applied %v", k.ID, got.Taken, got.Read, got.Applied)
	}
}

// TestWatcherLoadThenRun: Load reads the keys once and Run goes on from
// its connection without reading them again; a key created between the
// two is notified on that connection and reaches the index.
func TestWatcherLoadThenRun(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openDB(t, dbURL), openDB(t, dbURL)
	svc := manage.New(a, verify.NewIndex(), nil)
	if _, err := svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	ix := verify.NewIndex()
	w := b.NewWatcher(ix, postgres.WatchOptions{Resync: time.Hour})
	n, err := w.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || ix.Len() != 1 {
		t.Errorf("Load: %d keys, index %d, want the bootstrap key", n, ix.Len())
	}
	if w.Ready() {
		t.Error("watcher ready before Run")
	}
	sys := latchkey.System()
	if _, err := svc.CreateApplication(t.Context(), sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := svc.CreateAccessKey(t.Context(), sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 5*time.Second, "the key created between Load and Run", func() bool { return status(ix, k.ID) == "Active" })
	if !w.Ready() {
		t.Error("watcher not ready after Run")
	}
	if got := w.Resyncs(); got != 1 {
		t.Errorf("%d full loads, want only Load's", got)
	}
}
