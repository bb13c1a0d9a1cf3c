package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

type applicationsData struct {
	Apps []appRow
	Next string
	// KeyPrefix starts the secrets of the account's new keys (lksk_
	// unless the account chose its own).
	KeyPrefix string
}

type appRow struct {
	App  *latchkey.Application
	Keys []*latchkey.AccessKey
}

func appURL(name string) string { return Prefix + "/applications/" + url.PathEscape(name) }
func keyURL(id string) string   { return Prefix + "/keys/" + url.PathEscape(id) }

func (c *Console) applications(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	apps, next, err := c.Service.ListApplications(ctx, u.actor, latchkey.ApplicationFilter{
		Account: u.account, After: r.URL.Query().Get("page_token"), Limit: 100})
	if err != nil {
		return err
	}
	keys, _, err := c.Service.ListAccessKeys(ctx, u.actor, latchkey.AccessKeyFilter{Account: u.account, Kind: "application", Limit: 1000})
	if err != nil {
		return err
	}
	byApp := map[string][]*latchkey.AccessKey{}
	for _, k := range keys {
		byApp[k.Application] = append(byApp[k.Application], k)
	}
	d := applicationsData{Next: next, KeyPrefix: keyformat.SecretPrefix}
	accs, err := c.Service.ListAccounts(ctx, u.actor)
	if err != nil {
		return err
	}
	for _, a := range accs {
		if a.Name == u.account && a.KeyPrefix != "" {
			d.KeyPrefix = a.KeyPrefix
		}
	}
	for _, a := range apps {
		d.Apps = append(d.Apps, appRow{App: a, Keys: byApp[a.Name]})
	}
	c.render(w, r, u, http.StatusOK, "applications", "Applications", "applications", d)
	return nil
}

func (c *Console) createApplication(w http.ResponseWriter, r *http.Request, u *user) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	app, err := c.Service.CreateApplication(r.Context(), u.actor, u.account, name, strings.TrimSpace(r.PostForm.Get("description")), nil)
	if err != nil {
		return c.backOnUserError(w, r, u, Prefix+"/applications", err)
	}
	return c.back(w, r, u, appURL(app.Name), flash{Message: "Application " + app.Name + " registered. Create its first access key below."})
}

type applicationData struct {
	App       *latchkey.Application
	Keys      []*latchkey.AccessKey
	MaxKeys   int
	CanCreate bool
	Nonce     string
	Form      restrictionsForm
}

func (c *Console) application(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	app, err := c.Service.GetApplication(ctx, u.actor, u.account, r.PathValue("name"))
	if err != nil {
		return err
	}
	keys, _, err := c.Service.ListAccessKeys(ctx, u.actor, latchkey.AccessKeyFilter{Account: u.account, Application: app.Name, Kind: "application", Limit: 1000})
	if err != nil {
		return err
	}
	d := applicationData{App: app, Keys: keys, MaxKeys: c.Service.MaxKeysPerApplication, Form: formOf(app.Restrictions)}
	d.CanCreate = u.canWrite() && len(keys) < d.MaxKeys
	if d.CanCreate {
		if d.Nonce, err = c.sessions.newNonce(u.id, c.now()); err != nil {
			return err
		}
	}
	c.render(w, r, u, http.StatusOK, "application", app.Name, "applications", d)
	return nil
}

func (c *Console) updateApplicationRestrictions(w http.ResponseWriter, r *http.Request, u *user) error {
	name := r.PathValue("name")
	back := appURL(name)
	rs, err := parseRestrictions(r.PostForm)
	if err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	if _, err := c.Service.UpdateApplication(r.Context(), u.actor, u.account, name, nil, rs); err != nil {
		return c.backOnUserError(w, r, u, back, err)
	}
	return c.back(w, r, u, back, flash{Message: "Default restrictions of " + name + " saved: " + restrictionSummary(rs) + ". They apply to every key of the application from now on."})
}

func (c *Console) deleteApplication(w http.ResponseWriter, r *http.Request, u *user) error {
	name := r.PathValue("name")
	if r.PostForm.Get("confirm") != name {
		return c.back(w, r, u, appURL(name), flash{Error: true, Message: "Type the application's name exactly to delete it. Nothing was deleted."})
	}
	if err := c.Service.DeleteApplication(r.Context(), u.actor, u.account, name); err != nil {
		return c.backOnUserError(w, r, u, appURL(name), err)
	}
	return c.back(w, r, u, Prefix+"/applications", flash{Message: "Application " + name + " deleted."})
}
