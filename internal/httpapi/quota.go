package httpapi

import (
	"net/http"

	"github.com/latchkey/latchkey"
)

// getQuota answers GET /v1/access-keys/{id}/quota: what the key's quota
// has left, when it refills, and its recent history.
func (s *Server) getQuota(w http.ResponseWriter, r *http.Request) error {
	v, err := s.Service.GetQuota(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// QuotaTopUp is the body of POST /v1/access-keys/{id}/quota/top-up.
type QuotaTopUp struct {
	Amount int64 `json:"amount"`
}

// topUpQuota answers POST /v1/access-keys/{id}/quota/top-up: amount is
// added to what the quota has left. A reset is a PATCH of the key's
// quota.
func (s *Server) topUpQuota(w http.ResponseWriter, r *http.Request) error {
	var in QuotaTopUp
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	q, err := s.Service.TopUpQuota(r.Context(), actor(r), r.PathValue("id"), in.Amount)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Quota *latchkey.Quota `json:"quota"`
	}{q})
	return nil
}
