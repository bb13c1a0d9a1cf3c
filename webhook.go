package latchkey

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook event types. A webhook subscribed to no type in particular
// receives them all.
const (
	EventKeyCreated        = "key.created"
	EventKeyUpdated        = "key.updated"
	EventKeyDeleted        = "key.deleted"
	EventKeyExposed        = "key.exposed"
	EventKeyRotationDue    = "key.rotation_due"
	EventKeyExpiring       = "key.expiring"
	EventKeyUnused         = "key.unused"
	EventKeyDeletionSched  = "key.deletion_scheduled"
	EventRotationStarted   = "rotation.started"
	EventRotationCompleted = "rotation.completed"
	EventRotationStalled   = "rotation.stalled"
	EventWebhookPing       = "webhook.ping"
	// EventCanaryTriggered reports a use of a canary key.
	EventCanaryTriggered = "canary.triggered"
)

const (
	webhookSecretPrefix      = "whsec_"
	webhookSignatureVersion  = "v1"
	webhookSecretBytes       = 32
	maxWebhookURLLen         = 2048
	defaultWebhookToleration = 5 * time.Minute
)

// EventTypes lists every event type a webhook may subscribe to.
func EventTypes() []string {
	return []string{EventKeyCreated, EventKeyUpdated, EventKeyDeleted, EventKeyExposed, EventKeyRotationDue,
		EventKeyExpiring, EventKeyUnused, EventKeyDeletionSched, EventRotationStarted, EventRotationCompleted,
		EventRotationStalled, EventCanaryTriggered, EventQuotaLow, EventQuotaExhausted}
}

// Webhook is a receiver of an account's events. Its signing secret is
// shown once, when the webhook is created, and never returned again; it is
// stored because every delivery is signed with it, and never logged.
type Webhook struct {
	ID          string    `json:"id"`
	Account     string    `json:"account"`
	URL         string    `json:"url"`
	Description string    `json:"description"`
	Events      []string  `json:"events"` // empty: every event
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	// Secret is "whsec_" + base64 of the signing key. Never serialized.
	Secret string `json:"-"`
}

// Wants reports whether the webhook receives events of type typ.
func (w *Webhook) Wants(typ string) bool {
	if !w.Enabled {
		return false
	}
	if typ == EventWebhookPing || len(w.Events) == 0 {
		return true
	}
	for _, e := range w.Events {
		if e == typ {
			return true
		}
	}
	return false
}

// NewWebhook is what a caller gives to create a webhook.
type NewWebhook struct {
	URL         string   `json:"url"`
	Description string   `json:"description"`
	Events      []string `json:"events"`
}

// WebhookUpdate changes a webhook; nil fields are left alone.
type WebhookUpdate struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	Events      *[]string `json:"events"`
	Enabled     *bool     `json:"enabled"`
}

// ValidateWebhookURL accepts http and https URLs with a host and without
// user information (credentials do not belong in a URL) or a fragment.
// The host is a DNS name or an IP address in standard form: not an IPv6
// zone, and not the numeric shorthands some resolvers turn into addresses
// ("127.1", "0x7f000001", "2130706433"), which would hide an address from
// the destination policy's check at creation. Whether the server may reach
// the host is the destination policy's question (DestinationPolicy).
func ValidateWebhookURL(s string) error {
	if len(s) > maxWebhookURLLen {
		return Errorf(EINVALID, "url must be at most %d characters", maxWebhookURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return Errorf(EINVALID, "url must be an http or https URL such as https://hooks.example.com/latchkey")
	}
	if u.User != nil || strings.Contains(s, "lksk_") {
		return Errorf(EINVALID, "url must not hold credentials (user:password@ or a secret); the receiver checks the webhook-signature header instead")
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return Errorf(EINVALID, "url must not have a fragment")
	}
	return validateWebhookHost(u.Hostname())
}

func validateWebhookHost(host string) error {
	if host == "" {
		return Errorf(EINVALID, "url must name a host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Errorf(EINVALID, "url must not name an IPv6 zone")
		}
		return nil
	}
	// No top-level domain is numeric, so a name whose last label is a
	// number is an address in disguise.
	name := strings.TrimSuffix(host, ".")
	last := name[strings.LastIndexByte(name, '.')+1:]
	if isNumericLabel(last) {
		return Errorf(EINVALID, "url host %q is neither a DNS name nor an IP address in standard form (such as 192.0.2.10 or [2001:db8::10])", host)
	}
	return nil
}

// isNumericLabel reports whether s is a decimal, octal or hexadecimal
// number, as inet_aton reads the parts of an IPv4 address.
func isNumericLabel(s string) bool {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		s = h
		if s == "" {
			return true
		}
		return strings.Trim(s, "0123456789abcdef") == ""
	}
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// ValidateEventTypes checks a subscription list: each entry is one of
// EventTypes, exactly (case-sensitive). Returns EINVALID naming them
// otherwise.
func ValidateEventTypes(types []string) error {
	known := EventTypes()
	for _, t := range types {
		if _, err := ParseChoice("event", t, known); err != nil {
			return err
		}
	}
	return nil
}

// WebhookEvent is one event in the outbox, written in the same transaction
// as the change it reports, so that no event is lost in a crash. Body is
// the JSON sent to receivers: {"type", "timestamp", "data"}.
type WebhookEvent struct {
	ID        string          `json:"id"` // the webhook-id header, "msg_..."
	Account   string          `json:"account"`
	Type      string          `json:"type"`
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // waiting for its next attempt
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryFailed    = "failed"    // every attempt failed; no more tries
)

// DeliveryStatuses lists every delivery status, for filters.
func DeliveryStatuses() []string { return []string{DeliveryPending, DeliveryDelivered, DeliveryFailed} }

// WebhookDelivery is one event on its way to one webhook, with what became
// of the attempts so far.
type WebhookDelivery struct {
	ID            int64      `json:"id"`
	WebhookID     string     `json:"webhook_id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	ResponseCode  int        `json:"response_code"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
}

// DeliveryFilter selects a webhook's deliveries, newest first.
type DeliveryFilter struct {
	WebhookID string
	Status    string
	After     string
	Limit     int
}

// DueDelivery is a delivery claimed for an attempt, with what sending it
// needs.
type DueDelivery struct {
	Delivery WebhookDelivery
	URL      string
	Secret   string
	Body     json.RawMessage
}

// DeliveryResult is the outcome of one attempt.
type DeliveryResult struct {
	ID           int64
	At           time.Time
	Status       string     // pending (retry at NextAttempt), delivered or failed
	NextAttempt  *time.Time // for pending
	ResponseCode int
	Error        string
}

// NewWebhookSecret returns a fresh signing secret: "whsec_" and the base64
// of 32 bytes from crypto/rand. An error from the random source is
// returned.
func NewWebhookSecret() (string, error) {
	var b [webhookSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

func webhookKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, Errorf(EINVALID, "a webhook secret is whsec_ followed by base64")
	}
	return key, nil
}

// SignWebhook returns the webhook-signature header value for a message, as
// the Standard Webhooks specification defines it: "v1," and the base64 of
// HMAC-SHA256 over "{id}.{timestamp}.{body}" with the secret's bytes.
func SignWebhook(secret, msgID string, timestamp int64, body []byte) (string, error) {
	key, err := webhookKey(secret)
	if err != nil {
		return "", err
	}
	return webhookSignatureVersion + "," + base64.StdEncoding.EncodeToString(webhookMAC(key, msgID, timestamp, body)), nil
}

func webhookMAC(key []byte, msgID string, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks a received message the way a receiver should: the
// webhook-timestamp is within five minutes of now, and one of the
// space-separated signatures in webhook-signature is a valid v1 signature
// of id, timestamp and body (compared in constant time). It is for
// receivers written in Go and for tests.
func VerifyWebhook(secret, msgID, timestamp, signatures string, body []byte, now time.Time) error {
	key, err := webhookKey(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return Errorf(EINVALID, "webhook-timestamp is not a Unix time in seconds")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > defaultWebhookToleration || d < -defaultWebhookToleration {
		return Errorf(EINVALID, "webhook-timestamp is more than 5 minutes away from now")
	}
	want := webhookMAC(key, msgID, ts, body)
	for _, s := range strings.Fields(signatures) {
		v, sig, ok := strings.Cut(s, ",")
		if !ok || v != webhookSignatureVersion {
			continue
		}
		// Strict: base64 with non-zero padding bits decodes to the same
		// bytes as the canonical form, but it is not the signature we sent.
		got, err := base64.StdEncoding.Strict().DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return Errorf(EUNAUTHORIZED, "no valid webhook signature")
}

// WebhookTx is the part of Tx that stores webhooks and their outbox.
type WebhookTx interface {
	// CreateWebhook returns ENOTFOUND if the account does not exist,
	// EEXISTS if the ID is taken.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// FindWebhook returns the webhook with its secret, or ENOTFOUND.
	FindWebhook(ctx context.Context, id string) (*Webhook, error)
	// ListWebhooks returns an account's webhooks ("" = all), oldest first.
	ListWebhooks(ctx context.Context, account string) ([]*Webhook, error)
	// UpdateWebhook writes URL, description, events and enabled. Returns
	// ENOTFOUND.
	UpdateWebhook(ctx context.Context, w *Webhook) error
	// DeleteWebhook deletes the webhook and its deliveries. Returns
	// ENOTFOUND.
	DeleteWebhook(ctx context.Context, id string) error

	// EnqueueEvent stores e in the outbox and a pending delivery of it to
	// each of the webhooks, due at e.CreatedAt.
	EnqueueEvent(ctx context.Context, e *WebhookEvent, webhookIDs []string) ([]*WebhookDelivery, error)
	// ListDeliveries returns one page of a webhook's deliveries, newest
	// first, and the next page's token.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]*WebhookDelivery, string, error)
	// FindDelivery returns ENOTFOUND if there is no such delivery.
	FindDelivery(ctx context.Context, id int64) (*WebhookDelivery, error)
	// ClaimDeliveries takes up to limit pending deliveries due at now
	// (NextAttemptAt <= now), oldest due first, counts an attempt for each
	// and leases them: their next attempt moves to now+lease, so a
	// replica that dies while sending leaves them to be retried. Rows
	// another transaction holds are skipped, not waited for.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*DueDelivery, error)
	// FinishDelivery records the outcome of an attempt. Returns ENOTFOUND
	// when the delivery is gone (its webhook was deleted).
	FinishDelivery(ctx context.Context, r DeliveryResult) error
	// PruneWebhookEvents deletes finished deliveries created before
	// before, and the events no delivery refers to any more. It returns
	// how many deliveries it deleted.
	PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error)
}
