package latchkey

import (
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Account is a tenant. Every object belongs to exactly one account.
type Account struct {
	Name string `json:"name"`
	// KeyPrefix starts the secrets of the account's new application keys
	// instead of "lksk_" ("acme_live_"); "" keeps "lksk_". Changing it
	// changes only keys made afterwards. keyformat.ValidatePrefix says
	// what a prefix may be.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Branding is how the consumer portal (/portal) presents the account
	// to its API consumers; nil when unset.
	Branding  *Branding `json:"branding,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Branding is an account's look in the consumer portal. Every field is
// optional; "" keeps latchkey's default.
type Branding struct {
	// Name is shown in the portal's header and title.
	Name string `json:"name,omitempty"`
	// LogoURL is an https URL of an image shown beside the name.
	LogoURL string `json:"logo_url,omitempty"`
	// PrimaryColor and AccentColor are hex colours: #rgb or #rrggbb.
	PrimaryColor string `json:"primary_color,omitempty"`
	AccentColor  string `json:"accent_color,omitempty"`
}

// Empty reports whether b sets nothing.
func (b *Branding) Empty() bool { return b == nil || *b == Branding{} }

// MaxBrandNameLen bounds Branding.Name; MaxLogoURLLen Branding.LogoURL.
const (
	MaxBrandNameLen = 80
	MaxLogoURLLen   = 2048
)

// Validate checks a branding: a printable name of at most MaxBrandNameLen
// bytes, an absolute https logo URL without credentials or fragment, and
// colours of the form #rgb or #rrggbb. Errors are EINVALID naming the field.
func (b *Branding) Validate() error {
	if b == nil {
		return nil
	}
	if len(b.Name) > MaxBrandNameLen {
		return Errorf(EINVALID, "branding.name must be at most %d bytes", MaxBrandNameLen)
	}
	for _, r := range b.Name {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return Errorf(EINVALID, "branding.name must be printable UTF-8 text")
		}
	}
	if b.LogoURL != "" {
		u, err := url.Parse(b.LogoURL)
		switch {
		case len(b.LogoURL) > MaxLogoURLLen:
			return Errorf(EINVALID, "branding.logo_url must be at most %d bytes", MaxLogoURLLen)
		case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
			return Errorf(EINVALID, "branding.logo_url must be an absolute https URL such as https://cdn.example.com/logo.svg")
		case u.User != nil:
			return Errorf(EINVALID, "branding.logo_url must not hold a user name or password")
		case u.Fragment != "" || strings.ContainsAny(b.LogoURL, " \\\x00\t\r\n\"'<>`()"):
			return Errorf(EINVALID, "branding.logo_url must not hold a fragment, quotes, spaces, parentheses or angle brackets")
		}
	}
	for _, c := range []struct{ field, v string }{{"primary_color", b.PrimaryColor}, {"accent_color", b.AccentColor}} {
		if c.v != "" && !hexColor(c.v) {
			return Errorf(EINVALID, "branding.%s %q must be a hex colour such as #0a5fff or #08f", c.field, c.v)
		}
	}
	return nil
}

func hexColor(s string) bool {
	if len(s) != 4 && len(s) != 7 || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// AccountUpdate changes an account; nil fields are left as they are.
type AccountUpdate struct {
	// KeyPrefix: "" goes back to "lksk_".
	KeyPrefix *string `json:"key_prefix,omitempty"`
	// Branding replaces the account's portal branding; an empty object
	// removes it.
	Branding *Branding `json:"branding,omitempty"`
}
