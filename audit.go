package latchkey

import (
	"encoding/json"
	"time"
)

// AuditEvent records one state change: who, when, from where, what, and the
// object before and after. It never holds a secret: before and after are
// the public JSON of the object.
type AuditEvent struct {
	ID          int64           `json:"id"`
	Time        time.Time       `json:"time"`
	Account     string          `json:"account"`
	Actor       string          `json:"actor"`
	ActorKeyID  string          `json:"actor_access_key_id,omitempty"`
	SourceIP    string          `json:"source_ip,omitempty"`
	UserAgent   string          `json:"user_agent,omitempty"`
	Action      string          `json:"action"`
	TargetType  string          `json:"target_type"`
	Target      string          `json:"target"`
	Application string          `json:"application,omitempty"`
	Before      json.RawMessage `json:"before"`
	After       json.RawMessage `json:"after"`

	// The audit chain (see auditchain.go), set by the store.
	Seq      int64  `json:"seq,omitempty"`
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// Audit actions.
const (
	ActionAccountCreate     = "account.create"
	ActionAccountUpdate     = "account.update"
	ActionApplicationCreate = "application.create"
	ActionApplicationDelete = "application.delete"
	ActionApplicationUpdate = "application.update"
	ActionAccessKeyCreate   = "access_key.create"
	ActionAccessKeyUpdate   = "access_key.update"
	ActionAccessKeyDelete   = "access_key.delete"
	ActionAccessKeyExposed  = "access_key.exposed"
	ActionCanaryTriggered   = "access_key.canary_triggered"
	ActionPrincipalCreate   = "principal.create"
	ActionPrincipalDelete   = "principal.delete"
	ActionPolicyUpdate      = "policy.update"
	ActionWebhookCreate     = "webhook.create"
	ActionWebhookUpdate     = "webhook.update"
	ActionWebhookDelete     = "webhook.delete"
	ActionAccessKeyRoll     = "access_key.roll"
	ActionRotationUpdate    = "rotation.update"
	ActionAccessKeyImport   = "access_key.import"
	// ActionQuotaUpdate: a key's quota was set, topped up or removed.
	ActionQuotaUpdate = "access_key.quota_update"
	// Identities: created, changed (name, external ID, metadata, rate
	// limit), deleted, and their quota set, topped up or removed.
	ActionIdentityCreate      = "identity.create"
	ActionIdentityUpdate      = "identity.update"
	ActionIdentityDelete      = "identity.delete"
	ActionIdentityQuotaUpdate = "identity.quota_update"
)

// AuditActions lists every audit action, for filters.
func AuditActions() []string {
	return []string{ActionAccountCreate, ActionAccountUpdate, ActionApplicationCreate, ActionApplicationDelete, ActionApplicationUpdate,
		ActionAccessKeyCreate, ActionAccessKeyUpdate, ActionAccessKeyDelete, ActionAccessKeyExposed, ActionCanaryTriggered,
		ActionPrincipalCreate, ActionPrincipalDelete, ActionPolicyUpdate,
		ActionWebhookCreate, ActionWebhookUpdate, ActionWebhookDelete, ActionAccessKeyRoll, ActionRotationUpdate,
		ActionAccessKeyImport, ActionQuotaUpdate, ActionIdentityCreate, ActionIdentityUpdate, ActionIdentityDelete,
		ActionIdentityQuotaUpdate}
}

// AuditFilter selects audit events. Results are newest first.
type AuditFilter struct {
	Account     string // "" = every account (operators only)
	AccessKeyID string
	Application string
	Actor       string
	Action      string
	Since       *time.Time
	Until       *time.Time
	After       string // page token
	Limit       int
}
