package httpapi

import (
	"net/http"

	"github.com/latchkey/latchkey"
)

// MaxImportBodyBytes bounds a POST /v1/import body: latchkey.MaxImportBatch
// rows of a few hundred bytes each.
const MaxImportBodyBytes = 16 << 20

// importKeys is POST /v1/import: one batch of existing keys, answered
// with a report per row (manage.Service.ImportKeys).
func (s *Server) importKeys(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.ImportRequest
	if err := decode(w, r, MaxImportBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	in.Account = acc
	rep, err := s.Service.ImportKeys(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
