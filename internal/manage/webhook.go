package manage

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// CreatedWebhook is a new webhook with its signing secret, which is
// returned this once: receivers need it to check signatures, and the API
// never shows it again.
type CreatedWebhook struct {
	*latchkey.Webhook
	Secret string `json:"secret"`
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomID returns prefix and n random bytes in lower-case base32.
func randomID(prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", latchkey.Internal(fmt.Errorf("reading random bytes: %w", err))
	}
	return prefix + lowerBase32.EncodeToString(b), nil
}

// ValidWebhookID reports whether id looks like a webhook ID ("wh_" and 16
// base32 characters), so that other strings are NotFound without a query.
func ValidWebhookID(id string) bool {
	rest, ok := strings.CutPrefix(id, "wh_")
	if !ok || len(rest) != 16 {
		return false
	}
	_, err := lowerBase32.DecodeString(rest)
	return err == nil
}

func validateWebhook(url, description string, events []string) error {
	if err := latchkey.ValidateWebhookURL(url); err != nil {
		return err
	}
	if err := latchkey.ValidateDescription(description); err != nil {
		return err
	}
	return latchkey.ValidateEventTypes(events)
}

func (s *Service) destinations() *Destinations {
	if s.Destinations != nil {
		return s.Destinations
	}
	return &Destinations{}
}

// CreateWebhook registers a receiver of the account's events and returns
// it with its signing secret (shown once). Returns EINVALID for a URL that
// is not http(s) or holds credentials, or an unknown event type;
// EDESTINATION for a URL whose address, or one its host resolves to, the
// destination policy refuses; EFORBIDDEN, ENOTFOUND.
func (s *Service) CreateWebhook(ctx context.Context, a latchkey.Actor, account string, in latchkey.NewWebhook) (*CreatedWebhook, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := validateWebhook(in.URL, in.Description, in.Events); err != nil {
		return nil, err
	}
	if err := s.destinations().CheckURL(ctx, in.URL); err != nil {
		return nil, err
	}
	id, err := randomID("wh_", 10)
	if err != nil {
		return nil, err
	}
	secret, err := latchkey.NewWebhookSecret()
	if err != nil {
		return nil, latchkey.Internal(err)
	}
	now := s.now()
	events := slices.Clone(in.Events)
	if events == nil {
		events = []string{}
	}
	w := &latchkey.Webhook{ID: id, Account: account, URL: in.URL, Description: in.Description, Events: events,
		Enabled: true, CreatedAt: now, UpdatedAt: now, Secret: secret}
	err = s.update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateWebhook(ctx, w); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionWebhookCreate, "webhook", id, "", nil, w)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return &CreatedWebhook{Webhook: w, Secret: secret}, nil
}

// GetWebhook returns a webhook the actor may read (never its secret), or
// ENOTFOUND.
func (s *Service) GetWebhook(ctx context.Context, a latchkey.Actor, id string) (*latchkey.Webhook, error) {
	var w *latchkey.Webhook
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		w, err = findWebhook(ctx, tx, a, id)
		return err
	})
	return w, err
}

func findWebhook(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, id string) (*latchkey.Webhook, error) {
	nf := latchkey.Errorf(latchkey.ENOTFOUND, "webhook %s not found", id)
	if !ValidWebhookID(id) {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "webhook not found")
	}
	w, err := tx.FindWebhook(ctx, id)
	if latchkey.ErrorCode(err) == latchkey.ENOTFOUND || (err == nil && !a.CanRead(w.Account)) {
		return nil, nf
	}
	return w, err
}

// ListWebhooks returns an account's webhooks.
func (s *Service) ListWebhooks(ctx context.Context, a latchkey.Actor, account string) ([]*latchkey.Webhook, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	var out []*latchkey.Webhook
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		out, err = tx.ListWebhooks(ctx, account)
		return err
	})
	return out, err
}

// UpdateWebhook changes a webhook's URL, description, events or whether it
// is enabled. Returns ENOTFOUND, EFORBIDDEN, EINVALID, and EDESTINATION
// for a new URL the destination policy refuses.
func (s *Service) UpdateWebhook(ctx context.Context, a latchkey.Actor, id string, u latchkey.WebhookUpdate) (*latchkey.Webhook, error) {
	if u.URL != nil {
		if err := s.checkNewURL(ctx, a, id, *u.URL); err != nil {
			return nil, err
		}
	}
	now := s.now()
	var after *latchkey.Webhook
	err := s.update(ctx, func(tx latchkey.Tx) error {
		before, err := findWebhook(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if !a.CanWrite(before.Account) {
			return latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not change anything", a.Role)
		}
		w := *before
		if u.URL != nil {
			w.URL = *u.URL
		}
		if u.Description != nil {
			w.Description = *u.Description
		}
		if u.Events != nil {
			w.Events = slices.Clone(*u.Events)
			if w.Events == nil {
				w.Events = []string{}
			}
		}
		if u.Enabled != nil {
			w.Enabled = *u.Enabled
		}
		if err := validateWebhook(w.URL, w.Description, w.Events); err != nil {
			return err
		}
		after = &w
		if w.URL == before.URL && w.Description == before.Description && slices.Equal(w.Events, before.Events) && w.Enabled == before.Enabled {
			return nil
		}
		w.UpdatedAt = now
		if err := tx.UpdateWebhook(ctx, &w); err != nil {
			return err
		}
		ev, err := s.audit(a, now, w.Account, latchkey.ActionWebhookUpdate, "webhook", id, "", before, &w)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return after, nil
}

// checkNewURL checks a webhook's new URL against the destination policy,
// outside the update's transaction (it may wait for DNS), and only for an
// actor who may change the webhook, so that nobody else learns what the
// policy says of a name.
func (s *Service) checkNewURL(ctx context.Context, a latchkey.Actor, id, url string) error {
	var w *latchkey.Webhook
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		w, err = findWebhook(ctx, tx, a, id)
		return err
	})
	if err != nil {
		return err
	}
	if !a.CanWrite(w.Account) {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not change anything", a.Role)
	}
	if err := latchkey.ValidateWebhookURL(url); err != nil {
		return err
	}
	return s.destinations().CheckURL(ctx, url)
}

// DeleteWebhook deletes a webhook and its delivery log. Returns ENOTFOUND,
// EFORBIDDEN.
func (s *Service) DeleteWebhook(ctx context.Context, a latchkey.Actor, id string) error {
	now := s.now()
	return s.update(ctx, func(tx latchkey.Tx) error {
		w, err := findWebhook(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if !a.CanWrite(w.Account) {
			return latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not change anything", a.Role)
		}
		if err := tx.DeleteWebhook(ctx, id); err != nil {
			return err
		}
		ev, err := s.audit(a, now, w.Account, latchkey.ActionWebhookDelete, "webhook", id, "", w, nil)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
}

// ListDeliveries returns one page of a webhook's delivery log, newest
// first. Returns ENOTFOUND; EINVALID for a status that is not one of
// latchkey.DeliveryStatuses.
func (s *Service) ListDeliveries(ctx context.Context, a latchkey.Actor, f latchkey.DeliveryFilter) ([]*latchkey.WebhookDelivery, string, error) {
	if f.Status != "" {
		if _, err := latchkey.ParseChoice("status", f.Status, latchkey.DeliveryStatuses()); err != nil {
			return nil, "", err
		}
	}
	var (
		out  []*latchkey.WebhookDelivery
		next string
	)
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		if _, err := findWebhook(ctx, tx, a, f.WebhookID); err != nil {
			return err
		}
		out, next, err = tx.ListDeliveries(ctx, f)
		return err
	})
	return out, next, err
}

// PingWebhook queues a webhook.ping event for one webhook (even a
// disabled one) and returns its delivery, pending. The dispatcher sends
// it at once when it runs in this process. Returns ENOTFOUND, EFORBIDDEN.
func (s *Service) PingWebhook(ctx context.Context, a latchkey.Actor, id string) (*latchkey.WebhookDelivery, error) {
	now := s.now()
	var d *latchkey.WebhookDelivery
	err := s.update(ctx, func(tx latchkey.Tx) error {
		w, err := findWebhook(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if !a.CanWrite(w.Account) {
			return latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not change anything", a.Role)
		}
		ds, err := s.enqueue(ctx, tx, now, w.Account, latchkey.EventWebhookPing, map[string]string{"webhook_id": id}, []string{id})
		if err != nil {
			return err
		}
		d = ds[0]
		return nil
	}, nil)
	return d, err
}

// emit queues an event for every enabled webhook of account that wants
// typ, in the transaction of the change it reports.
func (s *Service) emit(ctx context.Context, tx latchkey.Tx, now time.Time, account, typ string, data any) error {
	hooks, err := tx.ListWebhooks(ctx, account)
	if err != nil {
		return err
	}
	var ids []string
	for _, w := range hooks {
		if w.Wants(typ) {
			ids = append(ids, w.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = s.enqueue(ctx, tx, now, account, typ, data, ids)
	return err
}

func (s *Service) enqueue(ctx context.Context, tx latchkey.Tx, now time.Time, account, typ string, data any, ids []string) ([]*latchkey.WebhookDelivery, error) {
	id, err := randomID("msg_", 16)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      any       `json:"data"`
	}{typ, now, data})
	if err != nil {
		return nil, latchkey.Internal(err)
	}
	return tx.EnqueueEvent(ctx, &latchkey.WebhookEvent{ID: id, Account: account, Type: typ, Body: body, CreatedAt: now}, ids)
}

// eventKey is what webhook events say of a key: its identity and state,
// never its digest.
type eventKey struct {
	ID          string             `json:"access_key_id"`
	Account     string             `json:"account"`
	Application string             `json:"application,omitempty"`
	Principal   string             `json:"principal,omitempty"`
	Description string             `json:"description"`
	Status      latchkey.Status    `json:"status"`
	CreatedAt   time.Time          `json:"created_at"`
	ExpiresAt   *time.Time         `json:"expires_at"`
	LastUsedAt  *time.Time         `json:"last_used_at"`
	Exposed     *latchkey.Exposure `json:"exposed"`
	Canary      bool               `json:"canary,omitempty"`
}

func keyEvent(k *latchkey.AccessKey) eventKey {
	e := eventKey{ID: k.ID, Account: k.Account, Application: k.Application, Principal: k.Principal, Description: k.Description,
		Status: k.Status, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Exposed: k.Exposed, Canary: k.Canary}
	if k.LastUsed != nil {
		t := k.LastUsed.At
		e.LastUsedAt = &t
	}
	return e
}

type keyEventData struct {
	AccessKey eventKey `json:"access_key"`
	Actor     string   `json:"actor"`
}

type rotationEventData struct {
	Account     string `json:"account"`
	Application string `json:"application"`
	OldKeyID    string `json:"old_access_key_id"`
	NewKeyID    string `json:"new_access_key_id"`
	Actor       string `json:"actor"`
}

// otherKeys returns the other keys of k's application, oldest first.
func otherKeys(ctx context.Context, tx latchkey.Tx, k *latchkey.AccessKey) ([]*latchkey.AccessKey, error) {
	if k.Application == "" {
		return nil, nil
	}
	keys, _, err := tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: k.Account, Application: k.Application, Kind: "application", Limit: 1000})
	if err != nil {
		return nil, err
	}
	// Canaries take no part in a rotation.
	return slices.DeleteFunc(keys, func(o *latchkey.AccessKey) bool { return o.ID == k.ID || o.Canary }), nil
}

// keyCreated runs in the transaction that creates k: key.created, and
// rotation.started when the application already has an Active key (step 1
// of a rotation: create the second key).
func (s *Service) keyCreated(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, k *latchkey.AccessKey) error {
	if err := s.emit(ctx, tx, now, k.Account, latchkey.EventKeyCreated, keyEventData{keyEvent(k), a.Principal}); err != nil {
		return err
	}
	if k.Canary {
		return nil
	}
	others, err := otherKeys(ctx, tx, k)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.Status == latchkey.StatusActive {
			return s.emit(ctx, tx, now, k.Account, latchkey.EventRotationStarted,
				rotationEventData{k.Account, k.Application, o.ID, k.ID, a.Principal})
		}
	}
	return nil
}

// keyUpdated runs in the transaction that changes a key: it records when
// the status changed (the idle clock of the unused rule restarts on
// reactivation, the Inactive clock of the delete rule starts on
// deactivation) and sends key.updated, or key.exposed.
func (s *Service) keyUpdated(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, before, after *latchkey.AccessKey, typ string) error {
	if before.Status != after.Status {
		st, err := tx.KeyStates(ctx, []string{after.ID})
		if err != nil {
			return err
		}
		ks := st[after.ID]
		if ks == nil {
			ks = &latchkey.KeyState{AccessKeyID: after.ID}
		}
		ks.StatusSince = &now
		if err := tx.PutKeyState(ctx, ks); err != nil {
			return err
		}
	}
	return s.emit(ctx, tx, now, after.Account, typ, keyEventData{keyEvent(after), a.Principal})
}

// keyDeleted runs in the transaction that deletes k: key.deleted, and,
// when a newer Active key of the application remains, the end of a
// rotation (step 5): rotation.completed, and the successor's RotatedAt.
func (s *Service) keyDeleted(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, k *latchkey.AccessKey) error {
	if err := tx.DeleteKeyState(ctx, k.ID); err != nil {
		return err
	}
	if err := s.emit(ctx, tx, now, k.Account, latchkey.EventKeyDeleted, keyEventData{keyEvent(k), a.Principal}); err != nil {
		return err
	}
	others, err := otherKeys(ctx, tx, k)
	if err != nil {
		return err
	}
	var successor *latchkey.AccessKey
	for _, o := range others {
		if o.Status == latchkey.StatusActive && o.CreatedAt.After(k.CreatedAt) {
			successor = o // the newest, as others are oldest first
		}
	}
	if successor == nil {
		return nil
	}
	st, err := tx.KeyStates(ctx, []string{successor.ID})
	if err != nil {
		return err
	}
	ks := st[successor.ID]
	if ks == nil {
		ks = &latchkey.KeyState{AccessKeyID: successor.ID}
	}
	ks.RotatedAt, ks.Predecessor = &now, k.ID
	if err := tx.PutKeyState(ctx, ks); err != nil {
		return err
	}
	return s.emit(ctx, tx, now, k.Account, latchkey.EventRotationCompleted,
		rotationEventData{k.Account, k.Application, k.ID, successor.ID, a.Principal})
}

// GetDelivery returns one delivery of a webhook the actor may read, or
// ENOTFOUND.
func (s *Service) GetDelivery(ctx context.Context, a latchkey.Actor, webhookID string, id int64) (*latchkey.WebhookDelivery, error) {
	var d *latchkey.WebhookDelivery
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		if _, err := findWebhook(ctx, tx, a, webhookID); err != nil {
			return err
		}
		d, err = tx.FindDelivery(ctx, id)
		if err == nil && d.WebhookID != webhookID {
			return latchkey.Errorf(latchkey.ENOTFOUND, "delivery %d not found", id)
		}
		return err
	})
	return d, err
}
