package latchkey

import (
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Application is a client system of the protected API. It owns at most a
// configured number of access keys (two by default, for rotation).
type Application struct {
	Account     string    `json:"account"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	KeyCount    int       `json:"key_count"`
	// Owner is the consumer organisation the application belongs to, as
	// the portal's role map names it ("" for none): a person signed in to
	// /portal as a consumer of that organisation manages its keys there.
	Owner string `json:"owner,omitempty"`

	// Restrictions are the default for every key of the application; a
	// key's own restrictions narrow them (a call must satisfy both).
	Restrictions *Restrictions `json:"restrictions,omitempty"`

	// IdentityID is the identity the application belongs to ("" for
	// none): its keys share the identity's rate limit and quota.
	IdentityID string `json:"identity_id,omitempty"`
	// Metadata is a small JSON object (NormalizeMetadata), returned by
	// every verification of the application's keys.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// ApplicationFilter selects applications in a list.
type ApplicationFilter struct {
	Account string
	// Owner, when set, keeps only the applications with this owner.
	Owner string
	// IdentityID, when set, selects the applications of that identity.
	IdentityID string
	After      string
	Limit      int
}

// ValidateName checks an account, application or principal name: 1 to 64
// characters of letters, digits, '-', '_' and '.', starting with a letter or
// digit. Names appear in URLs, so they are kept to a URL-safe alphabet.
func ValidateName(field, name string) error {
	if name == "" {
		return Errorf(EINVALID, "%s is required", field)
	}
	if len(name) > 64 {
		return Errorf(EINVALID, "%s must be at most 64 characters", field)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if i > 0 {
			ok = ok || c == '-' || c == '_' || c == '.'
		}
		if !ok {
			return Errorf(EINVALID, "%s %q may hold only letters, digits, '-', '_' and '.', and must start with a letter or digit", field, name)
		}
	}
	return nil
}

// ValidateDescription bounds free text.
func ValidateDescription(s string) error {
	if len(s) > MaxDescriptionLen {
		return Errorf(EINVALID, "description must be at most %d bytes", MaxDescriptionLen)
	}
	for _, r := range s {
		if r == 0xFFFD || r == 0 {
			return Errorf(EINVALID, "description must be valid UTF-8 text without NUL bytes")
		}
	}
	return nil
}

// MaxOwnerLen bounds an application's owner.
const MaxOwnerLen = 200

// ValidateOwner checks an application's owner: "" (none), or up to
// MaxOwnerLen bytes of printable text without leading or trailing space.
// It is compared byte for byte with what the portal's role map gives a
// consumer, so it is not normalised.
func ValidateOwner(s string) error {
	if len(s) > MaxOwnerLen {
		return Errorf(EINVALID, "owner must be at most %d bytes", MaxOwnerLen)
	}
	if strings.TrimSpace(s) != s {
		return Errorf(EINVALID, "owner must not start or end with white space")
	}
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return Errorf(EINVALID, "owner must be printable UTF-8 text")
		}
	}
	return nil
}
