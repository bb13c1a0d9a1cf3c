package httpapi

import (
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
)

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name      string             `json:"name"`
		KeyPrefix *string            `json:"key_prefix"`
		Branding  *latchkey.Branding `json:"branding"`
	}
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.Service.CreateAccount(r.Context(), actor(r), in.Name, latchkey.AccountUpdate{KeyPrefix: in.KeyPrefix, Branding: in.Branding})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, acc)
	return nil
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.AccountUpdate
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.Service.UpdateAccount(r.Context(), actor(r), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}

// listKeyPrefixes answers GET /v1/key-prefixes: the prefixes a scanner
// looks for (latchkey scan --verify/--report).
func (s *Server) listKeyPrefixes(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.Service.KeyPrefixes(r.Context(), actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		KeyPrefixes []string `json:"key_prefixes"`
	}{ps})
	return nil
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) error {
	accs, err := s.Service.ListAccounts(r.Context(), actor(r))
	if err != nil {
		return err
	}
	if accs == nil {
		accs = []*latchkey.Account{}
	}
	writeJSON(w, http.StatusOK, struct {
		Accounts []*latchkey.Account `json:"accounts"`
	}{accs})
	return nil
}

func (s *Server) listAuditEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, token, err := pageParams(r)
	if err != nil {
		return err
	}
	f := latchkey.AuditFilter{
		AccessKeyID: q.Get("access_key_id"), Application: q.Get("application"),
		Actor: q.Get("actor"), Action: q.Get("action"), After: token, Limit: limit,
	}
	if q.Get("account") != "" || actor(r).Role != latchkey.RoleOperator {
		if f.Account, err = s.account(r); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return latchkey.Errorf(latchkey.EINVALID, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", p.name)
			}
			*p.dst = &t
		}
	}
	evs, next, err := s.Service.ListAuditEvents(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []*latchkey.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, struct {
		Events   []*latchkey.AuditEvent `json:"audit_events"`
		NextPage string                 `json:"next_page_token,omitempty"`
	}{evs, next})
	return nil
}
