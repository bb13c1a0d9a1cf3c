package httpapi

import (
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// createIdentity answers POST /v1/identities.
func (s *Server) createIdentity(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.NewIdentity
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	id, err := s.Service.CreateIdentity(r.Context(), actor(r), acc, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, id)
	return nil
}

// listIdentities answers GET /v1/identities?external_id=.
func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	limit, token, err := pageParams(r)
	if err != nil {
		return err
	}
	out, next, err := s.Service.ListIdentities(r.Context(), actor(r), latchkey.IdentityFilter{Account: acc,
		ExternalID: r.URL.Query().Get("external_id"), After: token, Limit: limit})
	if err != nil {
		return err
	}
	if out == nil {
		out = []*latchkey.Identity{}
	}
	writeJSON(w, http.StatusOK, struct {
		Identities []*latchkey.Identity `json:"identities"`
		NextPage   string               `json:"next_page_token,omitempty"`
	}{out, next})
	return nil
}

// getIdentity answers GET /v1/identities/{id}.
func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	id, err := s.Service.GetIdentity(r.Context(), actor(r), acc, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, id)
	return nil
}

// updateIdentity answers PATCH /v1/identities/{id}.
func (s *Server) updateIdentity(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.IdentityUpdate
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	id, err := s.Service.UpdateIdentity(r.Context(), actor(r), acc, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, id)
	return nil
}

// deleteIdentity answers DELETE /v1/identities/{id}: 409 while
// applications still belong to it.
func (s *Server) deleteIdentity(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	if err := s.Service.DeleteIdentity(r.Context(), actor(r), acc, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getIdentityQuota answers GET /v1/identities/{id}/quota.
func (s *Server) getIdentityQuota(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	v, err := s.Service.GetIdentityQuota(r.Context(), actor(r), acc, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// topUpIdentityQuota answers POST /v1/identities/{id}/quota/top-up.
func (s *Server) topUpIdentityQuota(w http.ResponseWriter, r *http.Request) error {
	var in QuotaTopUp
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	q, err := s.Service.TopUpIdentityQuota(r.Context(), actor(r), acc, r.PathValue("id"), in.Amount)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Quota *latchkey.Quota `json:"quota"`
	}{q})
	return nil
}

// getIdentityUsage answers GET /v1/identities/{id}/usage?from&to&step:
// the usage of every key of the identity's applications, summed.
func (s *Server) getIdentityUsage(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	from, to, step, err := s.usageRange(r)
	if err != nil {
		return err
	}
	points, err := s.Service.IdentityUsage(r.Context(), actor(r), acc, r.PathValue("id"), from, to, step)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ID          string              `json:"identity_id"`
		StepSeconds int                 `json:"step_seconds"`
		Series      []manage.UsagePoint `json:"series"`
	}{r.PathValue("id"), int(step / time.Second), points})
	return nil
}
