package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 when the store is reachable and the index is loaded,
// 503 otherwise, so a load balancer sends traffic elsewhere.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			s.Log.Warn("not ready", "err", err)
			writeError(w, http.StatusServiceUnavailable, latchkey.EUNAVAILABLE, "not ready: "+latchkey.ErrorMessage(err))
			return nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
