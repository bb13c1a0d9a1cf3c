package latchkey

import "time"

// Account is a tenant. Every object belongs to exactly one account.
type Account struct {
	Name string `json:"name"`
	// KeyPrefix starts the secrets of the account's new application keys
	// instead of "lksk_" ("acme_live_"); "" keeps "lksk_". Changing it
	// changes only keys made afterwards. keyformat.ValidatePrefix says
	// what a prefix may be.
	KeyPrefix string    `json:"key_prefix,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AccountUpdate changes an account; nil fields are left as they are.
type AccountUpdate struct {
	// KeyPrefix: "" goes back to "lksk_".
	KeyPrefix *string `json:"key_prefix,omitempty"`
}
