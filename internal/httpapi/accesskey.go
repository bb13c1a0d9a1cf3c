package httpapi

import (
	"net/http"
	"strconv"

	"github.com/latchkey/latchkey"
)

func (s *Server) createAccessKey(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.NewAccessKey
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	k, err := s.Service.CreateAccessKey(r.Context(), actor(r), acc, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, k)
	return nil
}

type keyList struct {
	AccessKeys []*latchkey.AccessKey `json:"access_keys"`
	NextPage   string                `json:"next_page_token,omitempty"`
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, f latchkey.AccessKeyFilter) error {
	limit, token, err := pageParams(r)
	if err != nil {
		return err
	}
	f.Limit, f.After = limit, token
	keys, next, err := s.Service.ListAccessKeys(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []*latchkey.AccessKey{}
	}
	writeJSON(w, http.StatusOK, keyList{keys, next})
	return nil
}

func (s *Server) listApplicationKeys(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	return s.listKeys(w, r, latchkey.AccessKeyFilter{Account: acc, Application: r.PathValue("name"), Kind: "application"})
}

func (s *Server) listAccessKeys(w http.ResponseWriter, r *http.Request) error {
	f := latchkey.AccessKeyFilter{}
	q := r.URL.Query()
	if q.Get("account") != "" || actor(r).Role != latchkey.RoleOperator {
		acc, err := s.account(r)
		if err != nil {
			return err
		}
		f.Account = acc
	}
	if app := q.Get("application"); app != "" {
		if f.Account == "" {
			f.Account = latchkey.DefaultAccount
		}
		f.Application, f.Kind = app, "application"
	}
	f.ExternalID = q.Get("external_id")
	if kind := q.Get("kind"); kind != "" {
		var err error
		if f.Kind, err = latchkey.ParseChoice("kind", kind, latchkey.KeyKinds()); err != nil {
			return err
		}
	}
	return s.listKeys(w, r, f)
}

func (s *Server) getAccessKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.Service.GetAccessKey(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) updateAccessKey(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.AccessKeyUpdate
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	k, err := s.Service.UpdateAccessKey(r.Context(), actor(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) deleteAccessKey(w http.ResponseWriter, r *http.Request) error {
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "force must be true or false")
		}
		force = b
	}
	if err := s.Service.DeleteAccessKey(r.Context(), actor(r), r.PathValue("id"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getLastUsed(w http.ResponseWriter, r *http.Request) error {
	k, err := s.Service.GetAccessKey(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ID           string              `json:"access_key_id"`
		Application  string              `json:"application,omitempty"`
		Status       latchkey.Status     `json:"status"`
		LastUsed     *latchkey.Use       `json:"last_used"`
		LastRejected *latchkey.Rejection `json:"last_rejected"`
		UseCount     int64               `json:"use_count"`
		RejectCount  int64               `json:"reject_count"`
	}{k.ID, k.Application, k.Status, k.LastUsed, k.LastRejected, k.UseCount, k.RejectCount})
	return nil
}
