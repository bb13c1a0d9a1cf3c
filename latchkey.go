// Package latchkey holds the domain of the latchkey API key service:
// accounts, applications, access keys, admin principals, audit events,
// the Store contract that every storage adapter implements, and the one
// error type used across the code base.
//
// It imports the standard library only. Adapters (sqlite, postgres,
// httpapi, cli, ...) depend on it; it depends on none of them.
package latchkey

import "time"

// DefaultAccount is the account that exists in every installation, so that
// single-tenant users never need to name one.
const DefaultAccount = "default"

// DefaultMaxKeysPerApplication is how many access keys an application may
// own unless the server is configured otherwise. Rotation needs exactly two.
const DefaultMaxKeysPerApplication = 2

// Now is the clock used when no other is injected.
func Now() time.Time { return time.Now().UTC() }
