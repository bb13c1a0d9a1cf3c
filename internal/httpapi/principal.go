package httpapi

import (
	"net/http"

	"github.com/latchkey/latchkey"
)

func (s *Server) createPrincipal(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string        `json:"name"`
		Role latchkey.Role `json:"role"`
	}
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	p, err := s.Service.CreatePrincipal(r.Context(), actor(r), acc, in.Name, in.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) listPrincipals(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	ps, err := s.Service.ListPrincipals(r.Context(), actor(r), acc)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []*latchkey.Principal{}
	}
	writeJSON(w, http.StatusOK, struct {
		Principals []*latchkey.Principal `json:"principals"`
	}{ps})
	return nil
}

func (s *Server) getPrincipal(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	p, err := s.Service.GetPrincipal(r.Context(), actor(r), acc, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) deletePrincipal(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	if err := s.Service.DeletePrincipal(r.Context(), actor(r), acc, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listPrincipalKeys(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	if _, err := s.Service.GetPrincipal(r.Context(), actor(r), acc, r.PathValue("name")); err != nil {
		return err
	}
	return s.listKeys(w, r, latchkey.AccessKeyFilter{Account: acc, Principal: r.PathValue("name"), Kind: "principal"})
}

func (s *Server) createPrincipalKey(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Description string `json:"description"`
	}
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	k, err := s.Service.CreatePrincipalKey(r.Context(), actor(r), acc, r.PathValue("name"), in.Description)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, k)
	return nil
}
