package httpapi

import (
	"bytes"
	"mime"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey"
)

// getCredentialReport answers JSON, or CSV for ?format=csv or a request
// that accepts text/csv and not JSON.
func (s *Server) getCredentialReport(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	if format != "" {
		if _, err := latchkey.ParseChoice("format", format, []string{"json", "csv"}); err != nil {
			return err
		}
	}
	if format == "" && acceptsCSV(r.Header.Get("Accept")) {
		format = "csv"
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	rep, err := s.Service.CredentialReport(r.Context(), actor(r), acc)
	if err != nil {
		return err
	}
	if format != "csv" {
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		return latchkey.Internal(err)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="credential-report-`+acc+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(b.Bytes())
	return err
}

func acceptsCSV(accept string) bool {
	csv := false
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/csv":
			csv = true
		case "application/json", "*/*":
			return false
		}
	}
	return csv
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	v, err := s.Service.GetPolicy(r.Context(), actor(r), acc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.PolicySettings
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	v, err := s.Service.PutPolicy(r.Context(), actor(r), acc, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
