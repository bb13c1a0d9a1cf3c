package manage

import (
	"bytes"
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/hashformat"
	"github.com/latchkey/latchkey/keyformat"
)

// Bounds on what an imported row may carry.
const (
	maxImportedSecret = 512
	maxImportSalt     = 256
	maxOriginalID     = 256
)

// importRow is a row that passed validation, on its way to the store.
type importRow struct {
	res *latchkey.ImportResult
	key *latchkey.AccessKey
}

// ImportKeys imports one batch of existing keys into an account (see
// latchkey.ImportRequest), in one transaction, with one audit event that
// counts what happened (never a secret or digest). It is idempotent: a key
// whose digest is already stored in the account is reported "exists" and
// left alone, so a batch sent twice (a crash, a --resume) changes nothing
// the second time.
//
// Each row is created, exists, invalid (with the reason) or refused: the
// secret belongs to another account's key, or the row would give its
// application more keys than MaxKeysPerApplication (then every new row of
// that application in the batch is refused; req.GroupBy says how to
// spread keys over applications instead).
//
// Returns EINVALID for a bad request (group_by, origin, no application,
// too many rows), ENOTFOUND for an unknown account or, without grouping,
// application, EFORBIDDEN for a read-only actor, and ECONFLICT when a key
// of the batch was created by someone else meanwhile (run it again: those
// rows are then "exists").
func (s *Service) ImportKeys(ctx context.Context, a latchkey.Actor, req latchkey.ImportRequest) (*latchkey.ImportReport, error) {
	if err := requireWrite(a, req.Account); err != nil {
		return nil, err
	}
	if err := checkImportTypes(req.Keys); err != nil {
		return nil, err
	}
	if req.GroupBy != latchkey.GroupNone {
		if _, err := latchkey.ParseChoice("group_by", req.GroupBy, latchkey.ImportGroupings()); err != nil {
			return nil, err
		}
	}
	if req.Origin == "" {
		req.Origin = "import"
	}
	if err := latchkey.ValidateName("origin", req.Origin); err != nil {
		return nil, err
	}
	if req.GroupBy == latchkey.GroupNone && req.Application == "" {
		return nil, latchkey.Errorf(latchkey.EINVALID,
			"application is required unless group_by is external_id (an application per external ID) or key (an application per key)")
	}
	if req.Application != "" {
		if err := latchkey.ValidateName("application", req.Application); err != nil {
			return nil, err
		}
	}
	if len(req.Keys) > latchkey.MaxImportBatch {
		return nil, latchkey.Errorf(latchkey.EINVALID, "keys holds %d rows, at most %d per request", len(req.Keys), latchkey.MaxImportBatch)
	}
	now := s.now()
	rep := &latchkey.ImportReport{Results: make([]latchkey.ImportResult, len(req.Keys))}
	var rows []importRow
	seen := make(map[keyformat.Digest]int, len(req.Keys))
	for i := range req.Keys {
		in := &req.Keys[i]
		res := &rep.Results[i]
		res.Row = in.Row
		k, err := s.importedKey(a, req, in, now)
		if latchkey.ErrorCode(err) == latchkey.EINTERNAL {
			return nil, err
		}
		if err != nil {
			res.Outcome, res.Reason = latchkey.ImportInvalid, latchkey.ErrorMessage(err)
			continue
		}
		if first, dup := seen[k.SecretDigest]; dup {
			res.Outcome, res.Reason = latchkey.ImportInvalid, fmt.Sprintf("the same key as row %d", first)
			continue
		}
		seen[k.SecretDigest] = in.Row
		if e := s.Index.Lookup(&k.SecretDigest); e != nil {
			if e.Account != req.Account {
				res.Outcome, res.Reason = latchkey.ImportRefused, "the secret is in use by another key"
				continue
			}
			res.Outcome, res.AccessKeyID, res.Application = latchkey.ImportExists, e.ID, e.Application()
			continue
		}
		if e := s.Index.Get(k.ID); e != nil {
			res.Outcome, res.Reason = latchkey.ImportInvalid, fmt.Sprintf("access key ID %s is taken by another key", k.ID)
			continue
		}
		if res.Application, err = importApplication(req, k); err != nil {
			res.Outcome, res.Reason = latchkey.ImportInvalid, latchkey.ErrorMessage(err)
			continue
		}
		k.Application = res.Application
		rows = append(rows, importRow{res, k})
	}

	var created []*latchkey.AccessKey
	err := s.update(ctx, func(tx latchkey.Tx) error {
		created = created[:0]
		apps, err := s.importApplications(ctx, tx, req, rows, now, rep)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.res.Outcome == latchkey.ImportRefused {
				continue
			}
			if err := s.setAppFields(ctx, tx, r.key, apps[r.key.Application]); err != nil {
				return err
			}
			if err := tx.CreateAccessKey(ctx, r.key); err != nil {
				if latchkey.ErrorCode(err) == latchkey.EEXISTS {
					return latchkey.Errorf(latchkey.ECONFLICT, "row %d: its key was created meanwhile; send the batch again (its rows are then reported exists)", r.res.Row)
				}
				return err
			}
			r.res.Outcome, r.res.AccessKeyID = latchkey.ImportCreated, r.key.ID
			created = append(created, r.key)
		}
		rep.Counts = countImport(rep)
		ev, err := s.audit(a, now, req.Account, latchkey.ActionAccessKeyImport, "account", req.Account, req.Application, nil,
			struct {
				Origin  string `json:"origin"`
				GroupBy string `json:"group_by,omitempty"`
				latchkey.ImportCounts
			}{req.Origin, req.GroupBy, rep.Counts})
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, func() {
		for _, k := range created {
			s.Index.Put(k)
		}
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// checkImportTypes refuses the whole request for what is a mistake in the
// request rather than in one row's data: a value of the wrong type or
// outside an enum (a caller that reads a file checks those per row before
// sending, as latchkey import-keys does).
func checkImportTypes(keys []latchkey.ImportKey) error {
	for i := range keys {
		k := &keys[i]
		if md := bytes.TrimSpace(k.Metadata); len(md) > 0 && md[0] != '{' && string(md) != "null" {
			return latchkey.Errorf(latchkey.EMALFORMED, "keys[%d].metadata must be a JSON object", i)
		}
		if k.Format != "" {
			if _, err := latchkey.ParseChoice(fmt.Sprintf("keys[%d].hash_format", i), k.Format, hashformat.Inputs()); err != nil {
				return err
			}
		}
		if k.Status != "" {
			if _, err := latchkey.ParseChoice(fmt.Sprintf("keys[%d].status", i), string(k.Status), latchkey.Statuses()); err != nil {
				return err
			}
		}
	}
	return nil
}

// importedKey validates one row and makes the key it describes.
func (s *Service) importedKey(a latchkey.Actor, req latchkey.ImportRequest, in *latchkey.ImportKey, now time.Time) (*latchkey.AccessKey, error) {
	k := &latchkey.AccessKey{Account: req.Account, Status: latchkey.StatusActive, CreatedAt: now, UpdatedAt: now,
		KeyType: latchkey.KeyTypeBearer, Imported: &latchkey.Import{Origin: req.Origin, ImportedAt: now}}
	switch {
	case in.Secret != "" && in.Digest != "":
		return nil, latchkey.Errorf(latchkey.EINVALID, "give a secret or a digest, not both")
	case in.Secret != "":
		if in.Format != "" {
			return nil, latchkey.Errorf(latchkey.EINVALID, "hash_format is for a digest; a secret needs none")
		}
		if err := validImportedSecret(in.Secret); err != nil {
			return nil, err
		}
		// Whatever the key was hashed with before, latchkey keeps SHA-256.
		k.Imported.HashFormat, k.SecretDigest = latchkey.HashSHA256, keyformat.Sum(in.Secret)
	case in.Digest != "":
		f, d, err := hashformat.Parse(in.Format, in.Digest)
		if err != nil {
			return nil, latchkey.Errorf(latchkey.EINVALID, "%v", err)
		}
		k.Imported.HashFormat, k.SecretDigest = f, d
		if f == latchkey.HashSHA256Salted {
			if in.Salt == "" || len(in.Salt) > maxImportSalt {
				return nil, latchkey.Errorf(latchkey.EINVALID, "%s needs a salt of 1 to %d bytes", in.Format, maxImportSalt)
			}
			k.Salt = []byte(in.Salt)
		}
	default:
		return nil, latchkey.Errorf(latchkey.EINVALID, "a row needs a secret or a digest")
	}
	if in.Salt != "" && k.Salt == nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "salt is only for the sha256-salted formats")
	}
	switch {
	case keyformat.ValidID(in.ID):
		k.ID = in.ID
	case len(in.ID) > maxOriginalID || !utf8.ValidString(in.ID):
		return nil, latchkey.Errorf(latchkey.EINVALID, "id must be at most %d characters of UTF-8", maxOriginalID)
	default:
		k.Imported.OriginalID = latchkey.CleanText(in.ID, maxOriginalID)
		id, err := s.NewID()
		if err != nil {
			return nil, latchkey.Internal(err)
		}
		k.ID = id
	}
	if err := latchkey.ValidateDescription(in.Description); err != nil {
		return nil, err
	}
	k.Description = in.Description
	if err := latchkey.ValidateExternalID(in.ExternalID); err != nil {
		return nil, err
	}
	k.ExternalID = in.ExternalID
	md, err := latchkey.NormalizeMetadata(in.Metadata)
	if err != nil {
		return nil, err
	}
	k.Metadata = md
	if in.Status != "" {
		if k.Status, err = latchkey.ParseStatus(string(in.Status)); err != nil {
			return nil, err
		}
	}
	if in.CreatedAt != nil {
		t := in.CreatedAt.UTC().Truncate(time.Microsecond)
		if t.After(now) {
			return nil, latchkey.Errorf(latchkey.EINVALID, "created_at is in the future")
		}
		k.CreatedAt = t
	}
	if in.LastUsedAt != nil {
		t := in.LastUsedAt.UTC().Truncate(time.Microsecond)
		if t.After(now) {
			return nil, latchkey.Errorf(latchkey.EINVALID, "last_used_at is in the future")
		}
		k.LastUsed = &latchkey.Use{At: t}
	}
	if in.ExpiresAt != nil {
		// kept even when past: the key then answers EXPIRED, as it did
		t := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		k.ExpiresAt = &t
	}
	return k, nil
}

// validImportedSecret accepts any printable ASCII secret without spaces: it
// must travel in a header (Authorization: Bearer, X-Api-Key).
func validImportedSecret(s string) error {
	if len(s) > maxImportedSecret {
		return latchkey.Errorf(latchkey.EINVALID, "a secret has at most %d characters", maxImportedSecret)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return latchkey.Errorf(latchkey.EINVALID, "a secret holds printable ASCII without spaces (character %d is not)", i+1)
		}
	}
	return nil
}

// importApplication names the application a row's key goes to.
func importApplication(req latchkey.ImportRequest, k *latchkey.AccessKey) (string, error) {
	name := ""
	switch req.GroupBy {
	case latchkey.GroupNone:
		return req.Application, nil
	case latchkey.GroupExternalID:
		if k.ExternalID == "" {
			return "", latchkey.Errorf(latchkey.EINVALID, "group_by external_id needs an external_id on every row")
		}
		name = k.ExternalID
	case latchkey.GroupKey:
		name = k.ID
	}
	if req.Application != "" {
		name = req.Application + "-" + name
	}
	if err := latchkey.ValidateName("application name", name); err != nil {
		return "", err
	}
	return name, nil
}

// importApplications finds (or, with a grouping, creates) the batch's
// applications and refuses the rows of any that would hold more keys than
// allowed.
func (s *Service) importApplications(ctx context.Context, tx latchkey.Tx, req latchkey.ImportRequest, rows []importRow, now time.Time, rep *latchkey.ImportReport) (map[string]*latchkey.Application, error) {
	apps := map[string]*latchkey.Application{}
	adding := map[string]int{}
	var missing []*latchkey.Application
	rep.Counts.Applications = 0
	if req.GroupBy == latchkey.GroupNone {
		// found even for a batch with no new row: an unknown application
		// is ENOTFOUND, whatever the rows
		app, err := tx.FindApplication(ctx, req.Account, req.Application)
		if err != nil {
			return nil, err
		}
		apps[app.Name] = app
	}
	for _, r := range rows {
		r.res.Outcome, r.res.Reason = "", ""
		name := r.key.Application
		adding[name]++
		if _, ok := apps[name]; ok {
			continue
		}
		var app *latchkey.Application
		var err error
		if req.GroupBy != latchkey.GroupKey { // a new key ID names no application yet
			app, err = tx.FindApplication(ctx, req.Account, name)
		}
		switch {
		case err == nil && app != nil:
		case req.GroupBy == latchkey.GroupNone:
			return nil, err
		case err == nil || latchkey.ErrorCode(err) == latchkey.ENOTFOUND:
			// made below, unless every row of it is refused
			app = &latchkey.Application{Account: req.Account, Name: name, CreatedAt: now,
				Description: latchkey.CleanText("imported from "+req.Origin, latchkey.MaxDescriptionLen)}
			missing = append(missing, app)
		default:
			return nil, err
		}
		apps[name] = app
	}
	for _, r := range rows {
		app := apps[r.key.Application]
		if n := app.KeyCount + adding[app.Name]; n > s.MaxKeysPerApplication {
			hint := "; group the keys with group_by external_id (an application per customer) or key (an application per key)"
			if req.GroupBy == latchkey.GroupExternalID {
				hint = "; this external ID has too many keys for one application: import with group_by key"
			}
			r.res.Outcome = latchkey.ImportRefused
			r.res.Reason = fmt.Sprintf("application %q would hold %d access keys, at most %d%s", app.Name, n, s.MaxKeysPerApplication, hint)
		}
	}
	for _, app := range missing {
		if adding[app.Name] > s.MaxKeysPerApplication {
			continue
		}
		if err := tx.CreateApplication(ctx, app); err != nil {
			return nil, err
		}
		rep.Counts.Applications++
	}
	return apps, nil
}

func countImport(rep *latchkey.ImportReport) latchkey.ImportCounts {
	c := latchkey.ImportCounts{Applications: rep.Counts.Applications}
	for _, r := range rep.Results {
		switch r.Outcome {
		case latchkey.ImportCreated:
			c.Created++
		case latchkey.ImportExists:
			c.Exists++
		case latchkey.ImportInvalid:
			c.Invalid++
		case latchkey.ImportRefused:
			c.Refused++
		}
	}
	return c
}
