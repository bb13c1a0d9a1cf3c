package httpapi

import (
	"net/http"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

func (s *Server) account(r *http.Request) (string, error) {
	return manage.ResolveAccount(actor(r), r.URL.Query().Get("account"))
}

func (s *Server) createApplication(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.NewApplication
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	app, err := s.Service.CreateApplicationWith(r.Context(), actor(r), acc, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, app)
	return nil
}

func (s *Server) listApplications(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	limit, token, err := pageParams(r)
	if err != nil {
		return err
	}
	apps, next, err := s.Service.ListApplications(r.Context(), actor(r), latchkey.ApplicationFilter{Account: acc,
		IdentityID: r.URL.Query().Get("identity_id"), After: token, Limit: limit})
	if err != nil {
		return err
	}
	if apps == nil {
		apps = []*latchkey.Application{}
	}
	writeJSON(w, http.StatusOK, struct {
		Applications []*latchkey.Application `json:"applications"`
		NextPage     string                  `json:"next_page_token,omitempty"`
	}{apps, next})
	return nil
}

func (s *Server) getApplication(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	app, err := s.Service.GetApplication(r.Context(), actor(r), acc, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

func (s *Server) updateApplication(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.ApplicationUpdate
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	app, err := s.Service.UpdateApplicationWith(r.Context(), actor(r), acc, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

func (s *Server) deleteApplication(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	if err := s.Service.DeleteApplication(r.Context(), actor(r), acc, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
