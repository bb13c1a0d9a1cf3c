package latchkey

import (
	"encoding/json"
	"time"
)

// HashFormat is how an imported key's secret is found by the index: the
// lookup a presented secret goes through. latchkey's own keys have none
// (""): their digest is SHA-256 of the secret, reached by the native
// parse-and-checksum path.
//
// The index gives each format in use one lookup, and none at all when no
// imported key exists (internal/verify).
type HashFormat string

const (
	// HashSHA256: SHA-256 of the secret, as latchkey stores its own keys.
	// Raw secrets, SHA-256 digests in hex or base64, Tyk's sha256 and
	// Unkey's hash all land here.
	HashSHA256 HashFormat = "sha256"
	// HashSHA256Salted: SHA-256(salt || secret) with a salt per key. A
	// salt per key cannot be looked up by secret alone: the caller must
	// name the key (Basic auth ID:secret).
	HashSHA256Salted HashFormat = "sha256-salted"
	// HashMurmur32, 64 and 128: Tyk's MurmurHash3 digests (x86_32 and
	// x64_128, seed 0; 64 is the first half of 128). They are not
	// cryptographic: see docs/import.md.
	HashMurmur32  HashFormat = "murmur32"
	HashMurmur64  HashFormat = "murmur64"
	HashMurmur128 HashFormat = "murmur128"
)

// HashFormats lists the stored hash formats.
func HashFormats() []HashFormat {
	return []HashFormat{HashSHA256, HashSHA256Salted, HashMurmur32, HashMurmur64, HashMurmur128}
}

// Import says where an imported key came from. Only imported keys have one.
type Import struct {
	// Origin is the system the key came from (tyk, unkey, csv, or what
	// the importer named).
	Origin string `json:"origin"`
	// OriginalID is the key's ID in that system, when it had one that
	// does not fit latchkey's ID shape (a kept ID is the key's own).
	OriginalID string     `json:"original_id,omitempty"`
	HashFormat HashFormat `json:"hash_format"`
	ImportedAt time.Time  `json:"imported_at"`
}

// Import outcomes, one per row.
const (
	ImportCreated = "created"
	ImportExists  = "exists"
	ImportInvalid = "invalid"
	ImportRefused = "refused"
)

// Import grouping: where the keys of a batch go.
const (
	// GroupNone puts every key in the request's application.
	GroupNone = ""
	// GroupExternalID makes one application per external ID, named after
	// it; a key without an external ID is invalid.
	GroupExternalID = "external_id"
	// GroupKey makes one application per key.
	GroupKey = "key"
)

// ImportGroupings lists the values of ImportRequest.GroupBy.
func ImportGroupings() []string { return []string{GroupExternalID, GroupKey} }

// ImportRequest is one batch of keys to import into an account.
type ImportRequest struct {
	// Account is set by the caller (the API takes it from ?account=).
	Account string `json:"-"`
	// Application receives the keys when GroupBy is GroupNone; with a
	// grouping it is optional and, when given, prefixes the names of the
	// applications made ("billing-acme").
	Application string `json:"application"`
	GroupBy     string `json:"group_by"`
	// Origin is recorded on every key (Import.Origin); default "import".
	Origin string      `json:"origin"`
	Keys   []ImportKey `json:"keys"`
}

// ImportKey is one key to import: a raw secret, or a digest in a
// documented input format (docs/import.md). Nothing here is ever logged or
// audited but the IDs and the external ID.
type ImportKey struct {
	// Row is the caller's number for the row, echoed in the result.
	Row int `json:"row"`
	// ID is the key's ID in its system: kept when it is a latchkey ID,
	// else recorded as Import.OriginalID.
	ID     string `json:"id,omitempty"`
	Secret string `json:"secret,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Format is the digest's input format (sha256-hex, sha256-base64,
	// sha256-salted-hex, sha256-salted-base64, tyk-murmur32, tyk-murmur64,
	// tyk-murmur128, tyk-sha256, unkey-sha256); empty with a secret.
	Format string `json:"hash_format,omitempty"`
	// Salt is the per-key salt of the salted formats, as its bytes are
	// written (SHA-256(salt || secret)).
	Salt        string          `json:"salt,omitempty"`
	Description string          `json:"description,omitempty"`
	ExternalID  string          `json:"external_id,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	// Status defaults to Active.
	Status     Status     `json:"status,omitempty"`
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// ImportResult is what happened to one row.
type ImportResult struct {
	Row         int    `json:"row"`
	Outcome     string `json:"outcome"` // created, exists, invalid or refused
	AccessKeyID string `json:"access_key_id,omitempty"`
	Application string `json:"application,omitempty"`
	// Reason says why a row is invalid or refused.
	Reason string `json:"reason,omitempty"`
}

// ImportCounts counts a batch's outcomes.
type ImportCounts struct {
	Created      int `json:"created"`
	Exists       int `json:"exists"`
	Invalid      int `json:"invalid"`
	Refused      int `json:"refused"`
	Applications int `json:"applications_created"`
}

// ImportReport is the answer to a batch.
type ImportReport struct {
	Counts  ImportCounts   `json:"counts"`
	Results []ImportResult `json:"results"`
}

// MaxImportBatch bounds the keys of one ImportRequest.
const MaxImportBatch = 10000
