package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

const webhookColumns = `id, account, url, description, events, enabled, secret, created_at, updated_at`

func scanWebhook(s interface{ Scan(...any) error }) (*latchkey.Webhook, error) {
	var (
		w                latchkey.Webhook
		events           string
		enabled          int
		created, updated int64
	)
	if err := s.Scan(&w.ID, &w.Account, &w.URL, &w.Description, &events, &enabled, &w.Secret, &created, &updated); err != nil {
		return nil, err
	}
	w.Events = strings.Fields(events)
	if w.Events == nil {
		w.Events = []string{}
	}
	w.Enabled = enabled != 0
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &w, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateWebhook implements latchkey.Tx.
func (t *Tx) CreateWebhook(ctx context.Context, w *latchkey.Webhook) error {
	if err := t.accountExists(ctx, w.Account); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.Account, w.URL, w.Description, strings.Join(w.Events, " "), boolInt(w.Enabled), w.Secret,
		toMicros(w.CreatedAt), toMicros(w.UpdatedAt))
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "webhook %s already exists", w.ID)
	}
	return err
}

// FindWebhook implements latchkey.Tx.
func (t *Tx) FindWebhook(ctx context.Context, id string) (*latchkey.Webhook, error) {
	row := t.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`+t.forUpdate(), id)
	w, err := scanWebhook(row)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "webhook %s not found", id))
	}
	return w, nil
}

// ListWebhooks implements latchkey.Tx.
func (t *Tx) ListWebhooks(ctx context.Context, account string) ([]*latchkey.Webhook, error) {
	q, args := `SELECT `+webhookColumns+` FROM webhooks`, []any{}
	if account != "" {
		q, args = q+` WHERE account = ?`, append(args, account)
	}
	rows, err := t.query(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, mapErr(t.d, err)
		}
		out = append(out, w)
	}
	return out, mapErr(t.d, rows.Err())
}

// UpdateWebhook implements latchkey.Tx.
func (t *Tx) UpdateWebhook(ctx context.Context, w *latchkey.Webhook) error {
	res, err := t.exec(ctx, `UPDATE webhooks SET url = ?, description = ?, events = ?, enabled = ?, updated_at = ? WHERE id = ?`,
		w.URL, w.Description, strings.Join(w.Events, " "), boolInt(w.Enabled), toMicros(w.UpdatedAt), w.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "webhook %s not found", w.ID))
}

// DeleteWebhook implements latchkey.Tx.
func (t *Tx) DeleteWebhook(ctx context.Context, id string) error {
	if _, err := t.exec(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id); err != nil {
		return err
	}
	res, err := t.exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "webhook %s not found", id))
}

// EnqueueEvent implements latchkey.Tx.
func (t *Tx) EnqueueEvent(ctx context.Context, e *latchkey.WebhookEvent, webhookIDs []string) ([]*latchkey.WebhookDelivery, error) {
	at := toMicros(e.CreatedAt)
	if _, err := t.exec(ctx, `INSERT INTO webhook_events (id, account, type, body, created_at) VALUES (?, ?, ?, ?, ?)`,
		e.ID, e.Account, e.Type, string(e.Body), at); err != nil {
		if latchkey.ErrorCode(err) == latchkey.EEXISTS {
			return nil, latchkey.Errorf(latchkey.EEXISTS, "event %s already exists", e.ID)
		}
		return nil, err
	}
	out := make([]*latchkey.WebhookDelivery, 0, len(webhookIDs))
	for _, wid := range webhookIDs {
		var id int64
		err := t.queryRow(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, wid, e.ID, latchkey.DeliveryPending, at, at).Scan(&id)
		if err != nil {
			if latchkey.ErrorCode(mapErr(t.d, err)) == latchkey.ENOTFOUND {
				return nil, latchkey.Errorf(latchkey.ENOTFOUND, "webhook %s not found", wid)
			}
			return nil, mapErr(t.d, err)
		}
		next := e.CreatedAt
		out = append(out, &latchkey.WebhookDelivery{ID: id, WebhookID: wid, EventID: e.ID, EventType: e.Type,
			Status: latchkey.DeliveryPending, NextAttemptAt: &next, CreatedAt: e.CreatedAt})
	}
	return out, nil
}

const deliveryColumns = `d.id, d.webhook_id, d.event_id, e.type, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at,
	d.response_code, d.last_error, d.created_at`

func scanDelivery(s interface{ Scan(...any) error }, extra ...any) (*latchkey.WebhookDelivery, error) {
	var (
		d          latchkey.WebhookDelivery
		next, last sql.NullInt64
		created    int64
	)
	dest := append([]any{&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Status, &d.Attempts, &next, &last,
		&d.ResponseCode, &d.LastError, &created}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.LastAttemptAt, d.CreatedAt = timePtr(next), timePtr(last), fromMicros(created)
	return &d, nil
}

// ListDeliveries implements latchkey.Tx.
func (t *Tx) ListDeliveries(ctx context.Context, f latchkey.DeliveryFilter) ([]*latchkey.WebhookDelivery, string, error) {
	where, args := []string{"d.webhook_id = ?"}, []any{f.WebhookID}
	if f.Status != "" {
		where, args = append(where, "d.status = ?"), append(args, f.Status)
	}
	if f.After != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.After)
		n, perr := strconv.ParseInt(string(b), 10, 64)
		if err != nil || perr != nil {
			return nil, "", latchkey.Errorf(latchkey.EINVALID, "page_token is not valid")
		}
		where, args = append(where, "d.id < ?"), append(args, n)
	}
	limit := pageSize(f.Limit)
	rows, err := t.query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY d.id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*latchkey.WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, "", mapErr(t.d, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapErr(t.d, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(out[limit-1].ID, 10)))
	}
	return out, next, nil
}

// FindDelivery implements latchkey.Tx.
func (t *Tx) FindDelivery(ctx context.Context, id int64) (*latchkey.WebhookDelivery, error) {
	row := t.queryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.id = ?`, id)
	d, err := scanDelivery(row)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "delivery %d not found", id))
	}
	return d, nil
}

// ClaimDeliveries implements latchkey.Tx. On PostgreSQL the rows are locked
// with SKIP LOCKED, so replicas claiming at once take different rows; SQLite
// has one writer at a time.
func (t *Tx) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*latchkey.DueDelivery, error) {
	lock := ""
	if t.writable && t.d.ForUpdate != "" {
		lock = " " + t.d.ForUpdate + " OF d SKIP LOCKED"
	}
	rows, err := t.query(ctx, `SELECT `+deliveryColumns+`, w.url, w.secret, e.body
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id
		WHERE d.status = ? AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?`+lock,
		latchkey.DeliveryPending, toMicros(now), pageSize(limit))
	if err != nil {
		return nil, err
	}
	var out []*latchkey.DueDelivery
	for rows.Next() {
		var (
			dd   latchkey.DueDelivery
			body string
		)
		d, err := scanDelivery(rows, &dd.URL, &dd.Secret, &body)
		if err != nil {
			rows.Close()
			return nil, mapErr(t.d, err)
		}
		dd.Delivery, dd.Body = *d, []byte(body)
		out = append(out, &dd)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	next := now.Add(lease)
	for _, dd := range out {
		if _, err := t.exec(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ? WHERE id = ?`,
			toMicros(now), toMicros(next), dd.Delivery.ID); err != nil {
			return nil, err
		}
		dd.Delivery.Attempts++
		at := now
		dd.Delivery.LastAttemptAt, dd.Delivery.NextAttemptAt = &at, &next
	}
	return out, nil
}

// FinishDelivery implements latchkey.Tx.
func (t *Tx) FinishDelivery(ctx context.Context, r latchkey.DeliveryResult) error {
	res, err := t.exec(ctx, `UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, response_code = ?, last_error = ?, last_attempt_at = ?
		WHERE id = ?`, r.Status, nullMicros(r.NextAttempt), r.ResponseCode, r.Error, toMicros(r.At), r.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "delivery %d not found", r.ID))
}

// PruneWebhookEvents implements latchkey.Tx.
func (t *Tx) PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := t.exec(ctx, `DELETE FROM webhook_deliveries WHERE status <> ? AND created_at < ?`, latchkey.DeliveryPending, toMicros(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, latchkey.Internal(err)
	}
	_, err = t.exec(ctx, `DELETE FROM webhook_events WHERE created_at < ?
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)`, toMicros(before))
	return n, err
}
