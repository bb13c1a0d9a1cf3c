package httpapi

import (
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// getUsage answers GET /v1/access-keys/{id}/usage?from&to&step: calls per
// step, valid and rejected by code. Defaults: the last 3 hours by minute.
func (s *Server) getUsage(w http.ResponseWriter, r *http.Request) error {
	from, to, step, err := s.usageRange(r)
	if err != nil {
		return err
	}
	points, err := s.Service.UsageSeries(r.Context(), actor(r), r.PathValue("id"), from, to, step)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ID          string              `json:"access_key_id"`
		StepSeconds int                 `json:"step_seconds"`
		Series      []manage.UsagePoint `json:"series"`
	}{r.PathValue("id"), int(step / time.Second), points})
	return nil
}

// usageRange reads from, to and step of a usage query.
func (s *Server) usageRange(r *http.Request) (from, to time.Time, step time.Duration, err error) {
	q := r.URL.Query()
	now := s.Service.Now()
	to, from, step = now, now.Add(-3*time.Hour), time.Minute
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, step, latchkey.Errorf(latchkey.EINVALID, "to must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
	}
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, step, latchkey.Errorf(latchkey.EINVALID, "from must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
	} else if q.Get("to") != "" {
		from = to.Add(-3 * time.Hour)
	}
	if v := q.Get("step"); v != "" {
		if step, err = time.ParseDuration(v); err != nil {
			return from, to, step, latchkey.Errorf(latchkey.EINVALID, "step must be a duration such as 1m, 5m or 1h")
		}
	}
	return from, to, step, nil
}
