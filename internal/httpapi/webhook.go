package httpapi

import (
	"net/http"

	"github.com/latchkey/latchkey"
)

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.NewWebhook
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	wh, err := s.Service.CreateWebhook(r.Context(), actor(r), acc, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wh)
	return nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	acc, err := s.account(r)
	if err != nil {
		return err
	}
	hooks, err := s.Service.ListWebhooks(r.Context(), actor(r), acc)
	if err != nil {
		return err
	}
	if hooks == nil {
		hooks = []*latchkey.Webhook{}
	}
	writeJSON(w, http.StatusOK, struct {
		Webhooks []*latchkey.Webhook `json:"webhooks"`
	}{hooks})
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	wh, err := s.Service.GetWebhook(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wh)
	return nil
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	var in latchkey.WebhookUpdate
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	wh, err := s.Service.UpdateWebhook(r.Context(), actor(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wh)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.Service.DeleteWebhook(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	limit, token, err := pageParams(r)
	if err != nil {
		return err
	}
	f := latchkey.DeliveryFilter{WebhookID: r.PathValue("id"), Status: r.URL.Query().Get("status"), After: token, Limit: limit}
	ds, next, err := s.Service.ListDeliveries(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []*latchkey.WebhookDelivery{}
	}
	writeJSON(w, http.StatusOK, struct {
		Deliveries []*latchkey.WebhookDelivery `json:"deliveries"`
		NextPage   string                      `json:"next_page_token,omitempty"`
	}{ds, next})
	return nil
}

// pingWebhook queues a webhook.ping and, when this server runs the
// dispatcher, sends it before answering, so the answer shows the outcome.
func (s *Server) pingWebhook(w http.ResponseWriter, r *http.Request) error {
	a, id := actor(r), r.PathValue("id")
	d, err := s.Service.PingWebhook(r.Context(), a, id)
	if err != nil {
		return err
	}
	if s.Webhooks != nil {
		if _, err := s.Webhooks.RunOnce(r.Context()); err != nil {
			s.Log.Warn("sending a webhook ping", "webhook_id", id, "err", err)
		}
		if got, err := s.Service.GetDelivery(r.Context(), a, id, d.ID); err == nil {
			d = got
		}
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// hygieneRoutes are the credential report, the policy and webhooks.
func (s *Server) hygieneRoutes(e func(m, p string, h handlerFunc) endpoint) []endpoint {
	return []endpoint{
		e("GET", "/v1/credential-report", s.admin(s.getCredentialReport)),
		e("GET", "/v1/policy", s.admin(s.getPolicy)),
		e("PUT", "/v1/policy", s.admin(s.putPolicy)),
		e("GET", "/v1/webhooks", s.admin(s.listWebhooks)),
		e("POST", "/v1/webhooks", s.admin(s.createWebhook)),
		e("GET", "/v1/webhooks/{id}", s.admin(s.getWebhook)),
		e("PATCH", "/v1/webhooks/{id}", s.admin(s.updateWebhook)),
		e("DELETE", "/v1/webhooks/{id}", s.admin(s.deleteWebhook)),
		e("GET", "/v1/webhooks/{id}/deliveries", s.admin(s.listDeliveries)),
		e("POST", "/v1/webhooks/{id}/ping", s.admin(s.pingWebhook)),
	}
}
