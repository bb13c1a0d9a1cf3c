package scan

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/keyformat"
)

// Rule identifies what a finding is about.
type Rule string

const (
	// RuleSecret is a checksum-valid latchkey secret access key.
	RuleSecret Rule = "latchkey-secret-access-key"
	// RuleCredentialsFile is a credentials or .env file that holds a
	// latchkey secret inside a git work tree without being ignored: the
	// next `git add .` commits it.
	RuleCredentialsFile Rule = "latchkey-credentials-file"
)

// Finding is one thing found. It never holds a whole secret: only its masked
// form and its SHA-256 digest, which is what the server stores and what a
// leak report or a status check sends.
type Finding struct {
	Rule Rule
	// File is the path as scanned (joined to the scanned root), "-" for
	// standard input. For a commit it is the path in that commit.
	File   string
	Line   int // 1-based
	Column int // 1-based, in bytes
	// ColumnUTF16 is Column in UTF-16 code units, SARIF's default unit
	// (an invalid UTF-8 byte counts as one); Len is how many characters
	// the secret takes as written (all ASCII). Both are 0 when unknown.
	ColumnUTF16, Len int
	// Commit is the commit that added the secret at File; empty for files
	// on disk and for staged changes.
	Commit     string
	CommitTime time.Time
	Author     string
	// Masked is keyformat.Mask of the secret: "lksk_AbCd...".
	Masked string
	// Digest is keyformat.Sum of the secret.
	Digest keyformat.Digest
	// AccessKeyID is the access key ID found next to the secret, if any.
	AccessKeyID string
	// Encoding is how the secret was written: "" as is, "base64" (as in a
	// Kubernetes Secret) or "basic" (an HTTP Basic credential,
	// base64 of "ID:secret").
	Encoding string
	// Status is filled in by Annotate from the server; empty when not
	// checked.
	Status KeyStatus
}

// Message is the one-line description of the finding.
func (f Finding) Message() string {
	switch f.Rule {
	case RuleCredentialsFile:
		return "credentials file with a latchkey secret is in a git work tree and not ignored; add it to .gitignore or move it out of the tree"
	default:
		msg := "latchkey secret access key " + f.Masked
		var notes []string
		switch f.Encoding {
		case "base64":
			notes = append(notes, "base64-encoded")
		case "basic":
			notes = append(notes, "in an HTTP Basic credential")
		}
		if f.AccessKeyID != "" {
			notes = append(notes, "access key ID "+f.AccessKeyID)
		}
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, ", ") + ")"
		}
		return msg
	}
}

type findingJSON struct {
	Rule        Rule       `json:"rule"`
	File        string     `json:"file"`
	Line        int        `json:"line"`
	Column      int        `json:"column,omitempty"`
	Commit      string     `json:"commit,omitempty"`
	CommitTime  *time.Time `json:"commit_time,omitempty"`
	Author      string     `json:"author,omitempty"`
	Secret      string     `json:"secret"`
	SHA256      string     `json:"sha256"`
	AccessKeyID string     `json:"access_key_id,omitempty"`
	Encoding    string     `json:"encoding,omitempty"`
	Status      KeyStatus  `json:"status,omitempty"`
	Message     string     `json:"message"`
}

// MarshalJSON writes the digest in hex under "sha256" and the masked secret
// under "secret".
func (f Finding) MarshalJSON() ([]byte, error) {
	j := findingJSON{
		Rule: f.Rule, File: f.File, Line: f.Line, Column: f.Column,
		Commit: f.Commit, Author: f.Author, Secret: f.Masked,
		SHA256: hex.EncodeToString(f.Digest[:]), AccessKeyID: f.AccessKeyID, Encoding: f.Encoding,
		Status: f.Status, Message: f.Message(),
	}
	if !f.CommitTime.IsZero() {
		t := f.CommitTime.UTC()
		j.CommitTime = &t
	}
	return json.Marshal(j)
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Rule, b.Rule),
			a.CommitTime.Compare(b.CommitTime),
			cmp.Compare(a.Commit, b.Commit),
		)
	})
}

// KeyStatus is what the server knows of a found secret.
type KeyStatus string

// Key statuses a Checker reports.
const (
	StatusActive   KeyStatus = "active"   // a live key: deactivate and rotate it now
	StatusInactive KeyStatus = "inactive" // deactivated but not deleted
	StatusUnknown  KeyStatus = "unknown"  // no key has this secret (deleted, or another server's)
	// StatusCanary is a canary key: it authorizes nothing, and finding it
	// means the place it was planted in has been read or copied.
	StatusCanary KeyStatus = "canary"
)

// Checker looks up the keys behind found secrets by digest, so that no
// secret leaves the machine. The server side (a digest lookup next to the
// leak-report endpoint POST /v1/leaks) does not exist yet; the CLI will wire
// an implementation to `latchkey scan --verify` when it does.
type Checker interface {
	// Check returns the status of each digest. A digest missing from the
	// map is StatusUnknown.
	Check(ctx context.Context, digests []keyformat.Digest) (map[keyformat.Digest]KeyStatus, error)
}

// Reporter reports found secrets, by digest, so that the server deactivates
// the keys (`latchkey scan --report`, POST /v1/leaks). Not wired yet.
type Reporter interface {
	Report(ctx context.Context, leaks []Finding) error
}

// Digests returns the distinct digests of the secrets in fs, in order of
// first appearance.
func Digests(fs []Finding) []keyformat.Digest {
	seen := map[keyformat.Digest]bool{}
	var out []keyformat.Digest
	for _, f := range fs {
		if f.Rule == RuleSecret && !seen[f.Digest] {
			seen[f.Digest] = true
			out = append(out, f.Digest)
		}
	}
	return out
}

// Annotate sets the Status of every secret finding from c.
func Annotate(ctx context.Context, c Checker, fs []Finding) error {
	st, err := c.Check(ctx, Digests(fs))
	if err != nil {
		return err
	}
	for i := range fs {
		if fs[i].Rule != RuleSecret {
			continue
		}
		if s, ok := st[fs[i].Digest]; ok {
			fs[i].Status = s
		} else {
			fs[i].Status = StatusUnknown
		}
	}
	return nil
}
