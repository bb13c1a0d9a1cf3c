package latchkey

import "time"

// Account is a tenant. Every object belongs to exactly one account.
type Account struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}
