package httpapi

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/latchkey/latchkey"
)

// afterSeq reads the after_seq parameter: 0 when absent.
func afterSeq(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("after_seq")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, latchkey.Errorf(latchkey.EINVALID, "after_seq must be a whole number, 0 or more")
	}
	return n, nil
}

// chainParams reads the account, after_seq and limit of the chain routes.
func (s *Server) chainParams(r *http.Request) (account string, after int64, limit int, err error) {
	if limit, _, err = pageParams(r); err != nil {
		return "", 0, 0, err
	}
	if after, err = afterSeq(r); err != nil {
		return "", 0, 0, err
	}
	account, err = s.account(r)
	return account, after, limit, err
}

// getAuditChain answers one page of an account's audit chain in chain
// order, with its head; next_after_seq is the after_seq of the next page,
// absent on the last.
func (s *Server) getAuditChain(w http.ResponseWriter, r *http.Request) error {
	acc, after, limit, err := s.chainParams(r)
	if err != nil {
		return err
	}
	evs, head, err := s.Service.AuditChain(r.Context(), actor(r), acc, after, limit)
	if err != nil {
		return err
	}
	var next int64
	if n := len(evs); n > 0 && evs[n-1].Seq < head.Seq {
		next = evs[n-1].Seq
	}
	writeJSON(w, http.StatusOK, struct {
		Account string                   `json:"account"`
		Events  []*latchkey.AuditEvent   `json:"audit_events"`
		Head    *latchkey.AuditChainHead `json:"head"`
		Next    int64                    `json:"next_after_seq,omitempty"`
	}{acc, evs, head, next})
	return nil
}

// getAuditCheckpoints answers one page of an account's signed checkpoints
// and the public key that signs them (absent when the server signs none).
func (s *Server) getAuditCheckpoints(w http.ResponseWriter, r *http.Request) error {
	acc, after, limit, err := s.chainParams(r)
	if err != nil {
		return err
	}
	cps, err := s.Service.AuditCheckpoints(r.Context(), actor(r), acc, after, limit)
	if err != nil {
		return err
	}
	var next int64
	if n := len(cps); n > 0 && n == pageLimit(limit) {
		next = cps[n-1].Seq
	}
	out := struct {
		Account     string                      `json:"account"`
		PublicKey   string                      `json:"public_key,omitempty"`
		KeyID       string                      `json:"key_id,omitempty"`
		Checkpoints []*latchkey.AuditCheckpoint `json:"checkpoints"`
		Next        int64                       `json:"next_after_seq,omitempty"`
	}{Account: acc, Checkpoints: cps, Next: next}
	if len(s.AuditPublicKey) == ed25519.PublicKeySize {
		out.PublicKey = base64.StdEncoding.EncodeToString(s.AuditPublicKey)
		out.KeyID = latchkey.AuditKeyID(s.AuditPublicKey)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pageLimit is the page size a store gives for limit.
func pageLimit(limit int) int {
	if limit <= 0 {
		return 100
	}
	return limit
}
