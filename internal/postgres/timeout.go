package postgres

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

// DefaultOperationTimeout is Store.OperationTimeout after Open, and the
// connect timeout when the database URL sets none.
const DefaultOperationTimeout = 5 * time.Second

// bound returns ctx with the store's operation timeout, unless ctx ends
// sooner. A database that stops answering without closing its connections
// (a network partition, a hung server) would otherwise hold a management
// call, and the client that made it, until TCP gives up, minutes later;
// bounded, the call fails with EUNAVAILABLE (503) and the connection is
// closed.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.OperationTimeout <= 0 {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.OperationTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.OperationTimeout)
}

// Update implements latchkey.Store, within the operation timeout.
func (s *Store) Update(ctx context.Context, fn func(latchkey.Tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.DB.Update(ctx, func(tx latchkey.Tx) error { return fn(&boundTx{Tx: tx, bound: ctx}) })
}

// View implements latchkey.Store, within the operation timeout.
func (s *Store) View(ctx context.Context, fn func(latchkey.Tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.DB.View(ctx, func(tx latchkey.Tx) error { return fn(&boundTx{Tx: tx, bound: ctx}) })
}

// RecordUsage implements latchkey.Store, within the operation timeout: a
// flush that cannot finish keeps its counts for the next one.
func (s *Store) RecordUsage(ctx context.Context, batch []latchkey.UsageUpdate) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.DB.RecordUsage(ctx, batch)
}

// UsageSeries implements latchkey.Store, within the operation timeout.
func (s *Store) UsageSeries(ctx context.Context, id string, from, to time.Time) ([]latchkey.UsageCount, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.DB.UsageSeries(ctx, id, from, to)
}

// ScanAccessKeys and CompactUsage are not bounded: they read or fold every
// row, which may take longer than any one management call should; their
// callers' contexts govern them.

// boundTx runs each statement of a transaction within the transaction's
// bound as well as the context its caller passes. Bounding BEGIN and
// COMMIT alone is not enough: a statement waiting on its caller's context
// would hold the connection, and database/sql's rollback at the deadline
// waits for that statement, for ever over a partition.
//
// Every method of latchkey.Tx must be listed here: one that is not would
// pass through unbounded, and TestBoundTxCoversTx fails.
type boundTx struct {
	latchkey.Tx
	bound context.Context
}

// within returns a context that ends when ctx or the transaction's bound
// ends, and the function that releases it.
func (t *boundTx) within(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(t.bound, func() { cancel(context.Cause(t.bound)) })
	return ctx, func() { stop(); cancel(nil) }
}

func (t *boundTx) CreateAccount(ctx context.Context, a *latchkey.Account) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.CreateAccount(ctx, a)
}

func (t *boundTx) FindAccount(ctx context.Context, name string) (*latchkey.Account, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindAccount(ctx, name)
}

func (t *boundTx) ListAccounts(ctx context.Context) ([]*latchkey.Account, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListAccounts(ctx)
}

func (t *boundTx) CreateApplication(ctx context.Context, app *latchkey.Application) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.CreateApplication(ctx, app)
}

func (t *boundTx) FindApplication(ctx context.Context, account, name string) (*latchkey.Application, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindApplication(ctx, account, name)
}

func (t *boundTx) ListApplications(ctx context.Context, f latchkey.ApplicationFilter) ([]*latchkey.Application, string, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListApplications(ctx, f)
}

func (t *boundTx) UpdateApplication(ctx context.Context, app *latchkey.Application) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.UpdateApplication(ctx, app)
}

func (t *boundTx) DeleteApplication(ctx context.Context, account, name string) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.DeleteApplication(ctx, account, name)
}

func (t *boundTx) CreatePrincipal(ctx context.Context, p *latchkey.Principal) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.CreatePrincipal(ctx, p)
}

func (t *boundTx) FindPrincipal(ctx context.Context, account, name string) (*latchkey.Principal, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindPrincipal(ctx, account, name)
}

func (t *boundTx) ListPrincipals(ctx context.Context, account string) ([]*latchkey.Principal, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListPrincipals(ctx, account)
}

func (t *boundTx) DeletePrincipal(ctx context.Context, account, name string) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.DeletePrincipal(ctx, account, name)
}

func (t *boundTx) CreateAccessKey(ctx context.Context, k *latchkey.AccessKey) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.CreateAccessKey(ctx, k)
}

func (t *boundTx) FindAccessKey(ctx context.Context, id string) (*latchkey.AccessKey, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindAccessKey(ctx, id)
}

func (t *boundTx) ListAccessKeys(ctx context.Context, f latchkey.AccessKeyFilter) ([]*latchkey.AccessKey, string, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListAccessKeys(ctx, f)
}

func (t *boundTx) UpdateAccessKey(ctx context.Context, k *latchkey.AccessKey) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.UpdateAccessKey(ctx, k)
}

func (t *boundTx) DeleteAccessKey(ctx context.Context, id string) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.DeleteAccessKey(ctx, id)
}

func (t *boundTx) AppendAudit(ctx context.Context, e *latchkey.AuditEvent) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.AppendAudit(ctx, e)
}

func (t *boundTx) ListAuditEvents(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, string, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListAuditEvents(ctx, f)
}

// The hygiene transaction methods (PolicyTx, WebhookTx), bounded the same way.

func (t *boundTx) FindPolicy(ctx context.Context, account string) (*latchkey.AccountPolicy, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindPolicy(ctx, account)
}

func (t *boundTx) PutPolicy(ctx context.Context, p *latchkey.AccountPolicy) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.PutPolicy(ctx, p)
}

func (t *boundTx) ListPolicies(ctx context.Context) ([]*latchkey.AccountPolicy, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListPolicies(ctx)
}

func (t *boundTx) KeyStates(ctx context.Context, ids []string) (map[string]*latchkey.KeyState, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.KeyStates(ctx, ids)
}

func (t *boundTx) PutKeyState(ctx context.Context, s *latchkey.KeyState) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.PutKeyState(ctx, s)
}

func (t *boundTx) DeleteKeyState(ctx context.Context, id string) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.DeleteKeyState(ctx, id)
}

func (t *boundTx) InsertPolicyAction(ctx context.Context, a *latchkey.PolicyAction) (bool, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.InsertPolicyAction(ctx, a)
}

func (t *boundTx) ClaimPolicyAction(ctx context.Context, id, kind string, due time.Time, state string, at time.Time) (bool, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ClaimPolicyAction(ctx, id, kind, due, state, at)
}

func (t *boundTx) ListPolicyActions(ctx context.Context, f latchkey.PolicyActionFilter) ([]*latchkey.PolicyAction, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListPolicyActions(ctx, f)
}

func (t *boundTx) CreateWebhook(ctx context.Context, w *latchkey.Webhook) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.CreateWebhook(ctx, w)
}

func (t *boundTx) FindWebhook(ctx context.Context, id string) (*latchkey.Webhook, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindWebhook(ctx, id)
}

func (t *boundTx) ListWebhooks(ctx context.Context, account string) ([]*latchkey.Webhook, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListWebhooks(ctx, account)
}

func (t *boundTx) UpdateWebhook(ctx context.Context, w *latchkey.Webhook) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.UpdateWebhook(ctx, w)
}

func (t *boundTx) DeleteWebhook(ctx context.Context, id string) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.DeleteWebhook(ctx, id)
}

func (t *boundTx) EnqueueEvent(ctx context.Context, e *latchkey.WebhookEvent, webhookIDs []string) ([]*latchkey.WebhookDelivery, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.EnqueueEvent(ctx, e, webhookIDs)
}

func (t *boundTx) ListDeliveries(ctx context.Context, f latchkey.DeliveryFilter) ([]*latchkey.WebhookDelivery, string, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ListDeliveries(ctx, f)
}

func (t *boundTx) FindDelivery(ctx context.Context, id int64) (*latchkey.WebhookDelivery, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FindDelivery(ctx, id)
}

func (t *boundTx) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*latchkey.DueDelivery, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.ClaimDeliveries(ctx, now, lease, limit)
}

func (t *boundTx) FinishDelivery(ctx context.Context, r latchkey.DeliveryResult) error {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.FinishDelivery(ctx, r)
}

func (t *boundTx) PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	ctx, done := t.within(ctx)
	defer done()
	return t.Tx.PruneWebhookEvents(ctx, before)
}
