package manage

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// CredentialReport is every key of an account with its state and the
// policy's findings, made when it is asked for (it is never cached), with
// usage not yet written to the store included.
type CredentialReport struct {
	GeneratedAt time.Time        `json:"generated_at"`
	Account     string           `json:"account"`
	Policy      latchkey.Policy  `json:"policy"`
	Keys        []*CredentialRow `json:"keys"`
	Summary     map[string]int   `json:"summary"` // keys per finding
}

// CredentialRow is one key of the report.
type CredentialRow struct {
	Account            string             `json:"account"`
	Application        string             `json:"application,omitempty"`
	Principal          string             `json:"principal,omitempty"`
	AccessKeyID        string             `json:"access_key_id"`
	Status             latchkey.Status    `json:"status"`
	CreatedAt          time.Time          `json:"created_at"`
	AgeDays            int                `json:"age_days"`
	LastUsedAt         *time.Time         `json:"last_used_at"`
	LastUsedIP         string             `json:"last_used_ip"`
	LastRejectedAt     *time.Time         `json:"last_rejected_at"`
	LastRejectedIP     string             `json:"last_rejected_ip"`
	LastRejectedReason latchkey.Code      `json:"last_rejected_reason"`
	LastRotatedAt      *time.Time         `json:"last_rotated_at"`
	ExpiresAt          *time.Time         `json:"expires_at"`
	Exposed            bool               `json:"exposed"`
	ExposedAt          *time.Time         `json:"exposed_at"`
	Restricted         bool               `json:"restricted"`
	RotationDueAt      *time.Time         `json:"rotation_due_at"`
	DeactivateAt       *time.Time         `json:"deactivate_at"`
	DeleteAt           *time.Time         `json:"delete_at"`
	Findings           []latchkey.Finding `json:"findings"`
	// RollState is the state of the key's latest server-side roll, as old
	// or new key (waiting, stalled, done), "" if it was never rolled; and
	// RolledWith the other key of that roll.
	RollState  string `json:"roll_state"`
	RolledWith string `json:"rolled_with"`
	// IdentityID is the identity of the key's application, "" for none:
	// a report rolls up per identity by grouping on it.
	IdentityID string `json:"identity_id"`
}

// CredentialReport reports on every key of account (application and
// principal keys), oldest first. Returns ENOTFOUND for an account the
// actor cannot see.
func (s *Service) CredentialReport(ctx context.Context, a latchkey.Actor, account string) (*CredentialReport, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	now := s.now()
	var (
		keys   []*latchkey.AccessKey
		err    error
		view   *PolicyView
		states map[string]*latchkey.KeyState
		rolls  []*latchkey.Rotation
	)
	s.Index.ReadUsage(func() {
		err = s.Store.View(ctx, func(tx latchkey.Tx) error {
			if _, err := tx.FindAccount(ctx, account); err != nil {
				return err
			}
			f := latchkey.AccessKeyFilter{Account: account, Limit: 1000, NoCanaries: !a.CanSeeCanaries(account)}
			for {
				page, next, err := tx.ListAccessKeys(ctx, f)
				if err != nil {
					return err
				}
				keys = append(keys, page...)
				if next == "" {
					break
				}
				f.After = next
			}
			if view, err = s.policyView(ctx, tx, account); err != nil {
				return err
			}
			if states, err = keyStates(ctx, tx, keys); err != nil {
				return err
			}
			rolls, err = tx.ListRotations(ctx, latchkey.RotationFilter{Account: account, NewestFirst: true, Limit: 1000})
			return err
		})
		if err == nil {
			for _, k := range keys {
				s.mergePending(k)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	roll := rollsByKey(rolls)
	r := &CredentialReport{GeneratedAt: now, Account: account, Policy: view.Policy, Keys: make([]*CredentialRow, 0, len(keys)), Summary: map[string]int{}}
	for _, k := range keys {
		ev := view.Policy.Evaluate(k, states[k.ID], now)
		row := &CredentialRow{
			Account: k.Account, Application: k.Application, Principal: k.Principal, AccessKeyID: k.ID, Status: k.Status,
			CreatedAt: k.CreatedAt, AgeDays: int(now.Sub(k.CreatedAt) / latchkey.Day), ExpiresAt: k.ExpiresAt,
			Restricted: !k.Restrictions.Empty() || !k.AppRestrictions.Empty(), RotationDueAt: ev.RotationDueAt,
			DeactivateAt: ev.DeactivateAt, DeleteAt: ev.DeleteAt, Findings: ev.Findings,
		}
		if k.Identity != nil {
			row.IdentityID = k.Identity.ID
		}
		if u := k.LastUsed; u != nil {
			row.LastUsedAt, row.LastUsedIP = &u.At, u.IP
		}
		if rj := k.LastRejected; rj != nil {
			row.LastRejectedAt, row.LastRejectedIP, row.LastRejectedReason = &rj.At, rj.IP, rj.Reason
		}
		if k.Exposed != nil {
			row.Exposed, row.ExposedAt = true, &k.Exposed.At
		}
		if st := states[k.ID]; st != nil {
			row.LastRotatedAt = st.RotatedAt
		}
		if ro := roll[k.ID]; ro != nil {
			row.RollState, row.RolledWith = ro.State, ro.OldKeyID
			if ro.OldKeyID == k.ID {
				row.RolledWith = ro.NewKeyID
			}
		}
		for _, f := range ev.Findings {
			r.Summary[string(f)]++
		}
		r.Keys = append(r.Keys, row)
	}
	return r, nil
}

// CSVHeader is the first line of the CSV form of the report.
var CSVHeader = []string{"account", "application", "principal", "access_key_id", "status", "created_at", "age_days",
	"last_used_at", "last_used_ip", "last_rejected_at", "last_rejected_ip", "last_rejected_reason", "last_rotated_at",
	"expires_at", "exposed", "restricted", "rotation_due_at", "deactivate_at", "delete_at", "findings", "roll_state", "rolled_with", "identity_id"}

// WriteCSV writes the report as CSV: a header, then one line per key, with
// times in RFC 3339, "" for never, and findings separated by ';'.
func (r *CredentialReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, k := range r.Keys {
		findings := make([]string, len(k.Findings))
		for i, f := range k.Findings {
			findings[i] = string(f)
		}
		rec := []string{k.Account, k.Application, k.Principal, k.AccessKeyID, string(k.Status), csvTime(&k.CreatedAt),
			strconv.Itoa(k.AgeDays), csvTime(k.LastUsedAt), k.LastUsedIP, csvTime(k.LastRejectedAt), k.LastRejectedIP,
			string(k.LastRejectedReason), csvTime(k.LastRotatedAt), csvTime(k.ExpiresAt), strconv.FormatBool(k.Exposed),
			strconv.FormatBool(k.Restricted), csvTime(k.RotationDueAt), csvTime(k.DeactivateAt), csvTime(k.DeleteAt),
			strings.Join(findings, ";"), k.RollState, k.RolledWith, k.IdentityID}
		for i, v := range rec {
			rec[i] = csvSafe(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvSafe keeps a spreadsheet from reading a cell as a formula. No field
// of the report should start so, but the guard costs nothing.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
