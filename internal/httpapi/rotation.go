package httpapi

import (
	"net/http"
	"strconv"

	"github.com/latchkey/latchkey"
)

// rollAccessKey answers POST /v1/access-keys/{id}/roll: the successor with
// its secret (shown once) and the rotation that will retire the old key.
func (s *Server) rollAccessKey(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.Roll
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	out, err := s.Service.RollAccessKey(r.Context(), actor(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

type rotationList struct {
	Rotations []*latchkey.Rotation `json:"rotations"`
}

// listRotations answers GET /v1/rotations?account&access_key_id&open: the
// rolls of an account, or of one key (old or new).
func (s *Server) listRotations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	open := false
	if v := q.Get("open"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "open must be true or false")
		}
		open = b
	}
	acc := q.Get("account")
	if acc == "" && actor(r).Role != latchkey.RoleOperator {
		acc = actor(r).Account
	}
	rs, err := s.Service.ListRotations(r.Context(), actor(r), acc, q.Get("access_key_id"), open)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []*latchkey.Rotation{}
	}
	writeJSON(w, http.StatusOK, rotationList{rs})
	return nil
}
