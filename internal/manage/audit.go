package manage

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/latchkey/latchkey"
)

// AuditChain returns up to limit events of the account's audit chain with
// a seq above afterSeq, in chain order, with the account's chain head.
// Returns ENOTFOUND for an account the actor may not read (or that has no
// events: the two look alike), EFORBIDDEN for one who may read it but not
// see its canaries (a viewer).
func (s *Service) AuditChain(ctx context.Context, a latchkey.Actor, account string, afterSeq int64, limit int) ([]*latchkey.AuditEvent, *latchkey.AuditChainHead, error) {
	if err := requireRead(a, account); err != nil {
		return nil, nil, err
	}
	// The chain is every event, unfiltered (a gap would read as
	// tampering), and so holds canary alerts, which only those who may
	// see canaries see (latchkey.Actor.CanSeeCanaries).
	if !a.CanSeeCanaries(account) {
		return nil, nil, latchkey.Errorf(latchkey.EFORBIDDEN,
			"role %s may not read the audit chain: it holds canary alerts; an admin of the account runs audit verify", a.Role)
	}
	if afterSeq < 0 {
		return nil, nil, latchkey.Errorf(latchkey.EINVALID, "after_seq must be 0 or more")
	}
	var (
		evs   []*latchkey.AuditEvent
		heads []*latchkey.AuditChainHead
	)
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		if heads, err = tx.AuditChainHeads(ctx, account); err != nil {
			return err
		}
		evs, err = tx.ListAuditChain(ctx, account, afterSeq, limit)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(heads) == 0 {
		return nil, nil, latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", account)
	}
	return evs, heads[0], nil
}

// AuditCheckpoints returns up to limit signed checkpoints of the account
// with a seq above afterSeq. Returns ENOTFOUND for an account the actor may
// not read.
func (s *Service) AuditCheckpoints(ctx context.Context, a latchkey.Actor, account string, afterSeq int64, limit int) ([]*latchkey.AuditCheckpoint, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	if afterSeq < 0 {
		return nil, latchkey.Errorf(latchkey.EINVALID, "after_seq must be 0 or more")
	}
	var out []*latchkey.AuditCheckpoint
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		out, err = tx.ListAuditCheckpoints(ctx, account, afterSeq, limit)
		return err
	})
	return out, err
}

// Checkpointer signs the audit chains' heads with the server's key: an
// account's head is checkpointed once Every events were appended since its
// last checkpoint, or once Interval has passed with any event appended.
// Several replicas may checkpoint at once; a checkpoint of a seq already
// checkpointed is dropped by the store.
type Checkpointer struct {
	Service  *Service
	Key      ed25519.PrivateKey
	Every    int64         // events; 0 or less: by interval only
	Interval time.Duration // 0 or less: by count only

	last map[string]latchkey.AuditCheckpoint // newest checkpoint made, per account
}

// Run checkpoints every tick until ctx ends. Errors are logged and retried
// at the next tick.
func (c *Checkpointer) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if _, err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			c.Service.Log.Warn("audit checkpoint failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Checkpoint stores a signed checkpoint of every chain head that is due,
// and returns how many it stored. A head not checkpointed since this
// Checkpointer started is due at once.
func (c *Checkpointer) Checkpoint(ctx context.Context) (int, error) {
	if c.last == nil {
		c.last = map[string]latchkey.AuditCheckpoint{}
	}
	var heads []*latchkey.AuditChainHead
	if err := c.Service.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		heads, err = tx.AuditChainHeads(ctx, "")
		return err
	}); err != nil {
		return 0, err
	}
	now := c.Service.now()
	var due []*latchkey.AuditCheckpoint
	for _, h := range heads {
		l, seen := c.last[h.Account]
		if h.Seq == 0 || h.Seq <= l.Seq {
			continue
		}
		byCount := c.Every > 0 && h.Seq-l.Seq >= c.Every
		byTime := c.Interval > 0 && now.Sub(l.Time) >= c.Interval
		if seen && !byCount && !byTime {
			continue
		}
		cp := &latchkey.AuditCheckpoint{Account: h.Account, Seq: h.Seq, Hash: h.Hash, Time: now}
		latchkey.SignAuditCheckpoint(cp, c.Key)
		due = append(due, cp)
	}
	if len(due) == 0 {
		return 0, nil
	}
	if err := c.Service.Store.Update(ctx, func(tx latchkey.Tx) error {
		for _, cp := range due {
			if err := tx.AddAuditCheckpoint(ctx, cp); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, cp := range due {
		c.last[cp.Account] = *cp
	}
	return len(due), nil
}
