package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newCreateAccessKeyCmd() *cobra.Command {
	var (
		app, principal, description string
		expiresAt                   string
		externalID, metadata        string
		profile, credsAt            string
		reportOnly, canary          bool
		rf                          restrictionFlags
		publicKeyFile               string
		generate                    bool
		keyAlg                      string
		bindCert                    string
	)
	cmd := &cobra.Command{
		Use:   "create-access-key --application-name NAME [--save-to-profile PROFILE]",
		Short: "Create an access key for an application; its secret is shown once",
		Long: `Create an Active access key for an application (or, with --principal-name,
for an admin principal). An application may own two keys: the one in use
and, during a rotation, its successor (see rotate-access-key).

The secret access key exists only now: latchkey keeps a digest of it. Without
--save-to-profile it is printed once, with the key ID. With
--save-to-profile it is written, with the key ID, to that profile of the
credentials file (created with mode 0600; other profiles are kept) and not
printed at all, which keeps it out of terminal scrollback and logs. Point the
application at that profile.

JSON OUTPUT
  {<access key fields>, "secret_access_key"}
  access key fields: "access_key_id", "account", "application" or "principal",
  "description", "status", "created_at", "updated_at", "expires_at",
  "last_used", "last_rejected", "use_count", "reject_count", "exposed",
  "external_id" and "metadata" when the key has them, and "canary": true
  for a canary key.
  With --save-to-profile, "secret_access_key" is left out and
  "saved_to_profile" and "credentials_file" say where it went.

SIGNING KEYS
A signing key is never sent: the client holds an Ed25519 (or ECDSA P-256)
private key and signs each request (RFC 9421); latchkey stores only the
public key and its fingerprint. --public-key-file registers the public half
of a pair you made (a PEM PUBLIC KEY block, e.g. openssl pkey -pubout).
--generate-key-pair makes the pair here, sends only the public half, and
writes the private half to --save-to-profile (mode 0600), from which the
SDK's signer reads it; it is never printed.

Restriction flags (--allowed-ips, --allowed-referrers, --android-app,
--ios-bundle-ids, --scopes, --rate-limit) narrow the new key further than its
application's defaults; with --report-only they only record what they would
refuse.

--external-id is your own name for the key's customer (up to 128 letters,
digits and -_.:@/), --metadata a JSON object of at most 2,048 bytes and 4
levels (plan, tier...). Every verification returns both, and the gateways
pass them to the API as X-Latchkey-External-Id and X-Latchkey-Metadata.
Metadata is not secret: it is shown, audited and sent upstream.

With --canary the key is a canary (a honeytoken): it looks like any other key
but never authorizes anything; any use of it is answered as an unknown key's
and raises a canary.triggered alert (webhook, audit event, metric, console
banner). Plant it where real keys are kept (a CI variable, a credentials
file, a .env in a config repository); it does not count towards the
application's two keys. Only operators and the account's admins see that a
key is a canary; viewers do not see canaries at all.

EXAMPLES
  # Write the new key where the billing job reads it
  latchkey create-access-key --application-name billing --save-to-profile billing \
      --credentials-file /etc/billing/latchkey-credentials

  # Only from the billing hosts, read-only, at most 10 calls a second
  latchkey create-access-key --application-name billing --allowed-ips 203.0.113.0/24 \
      --scopes invoices:read --rate-limit 10/s:20

  # A key for your customer cus_42 on the pro plan
  latchkey create-access-key --application-name billing --external-id cus_42 \
      --metadata '{"plan":"pro"}'

  # Print it once (then store it in your secret manager)
  latchkey create-access-key --application-name billing --description "prod, 2026-11"

  # A canary to plant in the CI variable store: any use of it is an alert
  latchkey create-access-key --application-name billing --canary \
      --description "canary: CI variables" --save-to-profile canary-ci

  # A signing key: the private key is made here and never leaves this machine
  latchkey create-access-key --application-name billing --generate-key-pair --save-to-profile billing

  # A signing key for a public key made elsewhere
  openssl genpkey -algorithm ed25519 -out billing.key
  openssl pkey -in billing.key -pubout -out billing.pub
  latchkey create-access-key --application-name billing --public-key-file billing.pub

  # A second key for an admin principal, to rotate its own credential
  latchkey create-access-key --principal-name ci --save-to-profile ci-new`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			var err error
			if app == "" && principal == "" {
				return UsageErrorf("--application-name is required, e.g. --application-name billing (or --principal-name for an admin's key)")
			}
			if app != "" && principal != "" {
				return UsageErrorf("give --application-name or --principal-name, not both")
			}
			if principal != "" && (externalID != "" || metadata != "" || bindCert != "") {
				return UsageErrorf("--external-id, --metadata and --bind-certificate apply to application keys only")
			}
			var exp *time.Time
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return UsageErrorf("--expires-at %q: expected an RFC 3339 time such as 2027-01-31T00:00:00Z", expiresAt)
				}
				if principal != "" {
					return UsageErrorf("--expires-at applies to application keys only")
				}
				exp = &t
			}
			if canary && (principal != "" || rf.changed(cmd) || reportOnly) {
				return UsageErrorf("--canary makes an application key with no restrictions: give it with --application-name only (no --principal-name, restriction flags or --report-only)")
			}
			if credsAt == "" {
				credsAt = s.credentialsFile()
			}
			if profile != "" {
				if err := s.checkSaveTarget(credsAt, profile); err != nil {
					return err
				}
			}
			signing, err := signingKeyFlags(publicKeyFile, generate, keyAlg, profile, principal)
			if err != nil {
				return err
			}
			var k *client.CreatedAccessKey
			if app != "" {
				in := client.CreateAccessKeyInput{Account: s.account, Application: app, Description: description, ExpiresAt: exp, Canary: canary,
					PublicKey: signing.publicPEM}
				if in.ExternalID, err = externalIDFlag(externalID); err != nil {
					return err
				}
				if bindCert != "" {
					if in.CertificateThumbprint, err = certificateFlag(bindCert); err != nil {
						return err
					}
				}
				if metadata != "" {
					if in.Metadata, err = metadataFlag(metadata); err != nil {
						return err
					}
				}
				if rf.changed(cmd) {
					r, err := rf.apply(cmd, nil)
					if err != nil {
						return err
					}
					if reportOnly {
						in.ReportOnly = r
					} else {
						in.Restrictions = r
					}
				}
				k, err = cl.CreateAccessKey(cmd.Context(), in)
			} else {
				k, err = cl.CreatePrincipalAccessKey(cmd.Context(), client.CreatePrincipalAccessKeyInput{
					Account: s.account, Principal: principal, Description: description})
			}
			if latchkey.ErrorCode(err) == latchkey.ELIMIT && app != "" {
				return explainLimit(cmd.Context(), cl, s.account, app, err)
			}
			if err != nil {
				return err
			}
			if k.PublicKey != nil {
				return s.signingKeyCreated(p, k, signing, credsAt, profile)
			}
			if profile == "" {
				warnSecretOnce(p)
				return p.Print(keyCreatedView(p, k, k, "", ""))
			}
			if err := s.saveKey(p.info, p.err, credsAt, profile, k.ID, k.SecretAccessKey); err != nil {
				return fmt.Errorf("%w; access key %s was created but its secret could not be saved: delete it with 'latchkey delete-access-key --access-key-id %s --force' and try again", err, k.ID, k.ID)
			}
			return p.Print(keyCreatedView(p, savedKey{AccessKey: k.AccessKey, Profile: profile, File: credsAt}, k, profile, credsAt))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&app, "application-name", "", "application that will own the key (required unless --principal-name)")
	f.StringVar(&principal, "principal-name", "", "admin principal that will own the key, instead of an application")
	f.StringVar(&description, "description", "", "what the key is for, for people")
	f.StringVar(&expiresAt, "expires-at", "", "time (RFC 3339) after which the key stops working")
	f.StringVar(&externalID, "external-id", "", "your own ID for the key's customer, returned by every verification")
	f.StringVar(&metadata, "metadata", "", "a JSON object returned by every verification, e.g. '{\"plan\":\"pro\"}'")
	rf.register(f, false)
	f.BoolVar(&reportOnly, "report-only", false, "create the restrictions as report-only: record what they would refuse, refuse nothing")
	f.BoolVar(&canary, "canary", false, "make a canary key: it never authorizes anything and any use of it raises an alert")
	f.StringVar(&profile, "save-to-profile", "", "write the key ID and secret to this credentials profile instead of printing them")
	f.StringVar(&bindCert, "bind-certificate", "", "bind the key to this PEM TLS client certificate: calls must present it (RFC 8705 style), or they are CERTIFICATE_MISMATCH")
	f.StringVar(&publicKeyFile, "public-key-file", "", "make a signing key for this PEM public key (Ed25519 or ECDSA P-256); no secret is made")
	f.BoolVar(&generate, "generate-key-pair", false, "make a signing key pair here; the private key goes to --save-to-profile, only the public key is sent")
	f.StringVar(&keyAlg, "key-algorithm", latchkey.AlgEd25519, "algorithm of --generate-key-pair: "+latchkey.AlgEd25519+" or "+latchkey.AlgECDSAP256SHA)
	f.StringVar(&credsAt, "credentials-file", "", "credentials file for --save-to-profile (default ~/.latchkey/credentials, env "+EnvCredentialsFile+")")
	return cmd
}

// explainLimit replaces the server's LimitExceeded message with what to do
// next, naming the application's keys.
func explainLimit(ctx context.Context, cl *client.Client, account, app string, err error) error {
	var inactive []string
	n := 0
	for k, lerr := range cl.AccessKeys(ctx, client.ListAccessKeysInput{Account: account, Application: app}) {
		if lerr != nil {
			return err
		}
		n++
		if k.Status == latchkey.StatusInactive {
			inactive = append(inactive, k.ID)
		}
	}
	if len(inactive) > 0 {
		return latchkey.Errorf(latchkey.ELIMIT,
			"application %q already has %d access keys, the most it may have; delete the Inactive key %s first (latchkey delete-access-key --access-key-id %s)",
			app, n, strings.Join(inactive, ", "), inactive[0])
	}
	return latchkey.Errorf(latchkey.ELIMIT,
		"application %q already has %d access keys, all Active, the most it may have; to replace one, run latchkey rotate-access-key --access-key-id ID (it deactivates and deletes the old key once nothing uses it)",
		app, n)
}

// savedKey is the JSON of a key whose secret went to a profile.
type savedKey struct {
	latchkey.AccessKey
	Profile string `json:"saved_to_profile"`
	File    string `json:"credentials_file"`
}

// warnSecretOnce tells the user, on standard error, that the secret on
// standard output will not be shown again.
func warnSecretOnce(p *printer) {
	fmt.Fprintln(p.err, "latchkey: this is the only time the secret access key is shown: store it now (or use --save-to-profile).")
}

// keyCreatedView shows a new key: with its secret, or with where it was
// saved.
func keyCreatedView(p *printer, js any, k *client.CreatedAccessKey, profile, file string) view {
	v := view{JSON: js, Vertical: true,
		Headers: []string{"ACCESS KEY ID", "OWNER", "STATUS", "DESCRIPTION"},
		Rows:    [][]cell{{c(k.ID), c(owner(&k.AccessKey)), statusCell(&k.AccessKey), c(dash(k.Description))}},
	}
	if profile == "" {
		v.Headers = append(v.Headers, "SECRET ACCESS KEY")
		v.Rows[0] = append(v.Rows[0], c(k.SecretAccessKey))
	} else {
		v.Headers = append(v.Headers, "SAVED TO PROFILE", "CREDENTIALS FILE")
		v.Rows[0] = append(v.Rows[0], c(profile), c(file))
	}
	return v
}
