package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/keyformat"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (s *state) newConfigureCmd() *cobra.Command {
	var (
		id, credsAt string
		noCheck     bool
	)
	cmd := &cobra.Command{
		Use:   "configure [--profile NAME] [--access-key-id ID] [--endpoint-url URL]",
		Short: "Write the admin credentials and server URL of a profile",
		Long: `Write a profile of the credentials file: the admin access key the CLI signs
in with, and the server's URL. latchkey serve writes the first operator's
profile ("default") itself on first start; use configure for other admins,
other servers, or after a rotation of your own key.

On a terminal, configure asks for each value (Enter keeps the current one)
and reads the secret without echoing it. Otherwise it takes the key ID from
--access-key-id and the secret from the first line of standard input: no
flag takes a secret, since command lines end up in shell history.

Before saving, configure checks the key against the server; --no-check
skips that (the server is not up yet). The file is written with mode 0600;
the profile's previous key, if different, is kept as PROFILE-previous-N.

EXAMPLES
  latchkey configure
  latchkey configure --profile staging --endpoint-url https://keys.staging.example.com

  # From a script, with the secret from a secret manager
  vault kv get -field=secret kv/latchkey/ci | \
      latchkey configure --profile ci --access-key-id LKIAEXAMPLEEXAMPLE23

  # Where each setting comes from
  latchkey configure list

  # One setting, for a script (the secret never goes through a command line)
  ADMIN=$(latchkey configure get latchkey_secret_access_key)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.runConfigure(cmd, id, credsAt, noCheck)
		},
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "access key ID of the admin principal")
	cmd.Flags().StringVar(&credsAt, "credentials-file", "", "credentials file to write (default ~/.latchkey/credentials, env "+EnvCredentialsFile+")")
	cmd.Flags().BoolVar(&noCheck, "no-check", false, "save without checking the key against the server")
	cmd.AddCommand(s.newConfigureListCmd(), s.newConfigureGetCmd())
	return cmd
}

// profileFile reads the credentials file that configure and its
// subcommands work on (credsAt, else the default) and names the profile
// (--profile, else LATCHKEY_PROFILE, else "default").
func (s *state) profileFile(credsAt string) (path, name string, f *credfile.File, err error) {
	if credsAt == "" {
		credsAt = s.credentialsFile()
	}
	name, _ = s.setting(s.profile, "profile", EnvProfile)
	if name == "" {
		name = "default"
	}
	f, err = credfile.Read(credsAt)
	if err != nil {
		return "", "", nil, fmt.Errorf("reading %s: %w", credsAt, err)
	}
	return credsAt, name, f, nil
}

func (s *state) runConfigure(cmd *cobra.Command, id, credsAt string, noCheck bool) error {
	credsAt, name, f, err := s.profileFile(credsAt)
	if err != nil {
		return err
	}
	old := f.Profile(name)
	p := credfile.Profile{}
	for k, v := range old {
		p[k] = v
	}
	endpoint, _ := s.setting(s.endpointURL, "endpoint-url", EnvEndpointURL)
	stderr := cmd.ErrOrStderr()
	in := cmd.InOrStdin()
	interactive := s.env.IsTerminal(in)
	var secret string
	if interactive {
		fmt.Fprintf(stderr, "Configuring profile %q in %s.\n", name, credsAt)
		if id == "" {
			if id, err = ask(in, stderr, "Access key ID", p[credfile.KeyAccessKeyID]); err != nil {
				return err
			}
		}
		if secret, err = readSecret(in, stderr, p[credfile.KeySecretAccessKey]); err != nil {
			return err
		}
		if endpoint == "" {
			def := p[credfile.KeyEndpointURL]
			if def == "" {
				def = f.Profile("default")[credfile.KeyEndpointURL]
			}
			if def == "" {
				def = client.DefaultEndpoint
			}
			if endpoint, err = ask(in, stderr, "Endpoint URL", def); err != nil {
				return err
			}
		}
	} else {
		line, err := readLine(in)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the secret from standard input: %w", err)
		}
		secret = strings.TrimSpace(line)
	}
	if id == "" {
		id = p[credfile.KeyAccessKeyID]
	}
	if secret == "" {
		if id != p[credfile.KeyAccessKeyID] || p[credfile.KeySecretAccessKey] == "" {
			return UsageErrorf("no secret access key: give it on standard input (it is never taken from a flag), e.g. printf '%%s\\n' \"$SECRET\" | latchkey configure --access-key-id ID")
		}
		secret = p[credfile.KeySecretAccessKey]
	}
	if id == "" {
		return UsageErrorf("--access-key-id is required, e.g. --access-key-id LKIAEXAMPLEEXAMPLE23")
	}
	if !keyformat.ValidID(id) {
		return UsageErrorf("--access-key-id %q: expected %s followed by 16 characters A-Z and 2-7", id, keyformat.IDPrefix)
	}
	if !keyformat.ValidSecret(secret) {
		return UsageErrorf("the secret access key read from standard input is not a latchkey secret (lksk_ or an account's key prefix such as acme_live_, then 46 letters and digits with a valid checksum); it was not saved")
	}
	if endpoint == "" {
		endpoint = p[credfile.KeyEndpointURL]
	}
	if endpoint != "" {
		if _, err := client.New(endpoint); err != nil {
			return UsageErrorf("--endpoint-url %q: %s", endpoint, errMessage(err))
		}
		p[credfile.KeyEndpointURL] = endpoint
	}
	if !noCheck {
		if err := s.checkCredentials(cmd, endpoint, client.Credentials{AccessKeyID: id, SecretAccessKey: secret}); err != nil {
			return err
		}
	}
	p[credfile.KeyAccessKeyID] = id
	p[credfile.KeySecretAccessKey] = secret
	moved, err := credfile.SaveProfile(credsAt, name, p)
	if err != nil {
		return fmt.Errorf("saving profile %q to %s: %w", name, credsAt, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Saved profile %q (access key %s) in %s.\n", name, id, credsAt)
	if moved != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "The key the profile held before is kept as profile %q.\n", moved)
	}
	for _, w := range credfile.Warnings(credsAt) {
		fmt.Fprintf(stderr, "latchkey: warning: %s\n", w)
	}
	return nil
}

// checkCredentials signs in to the server with creds. A refused key is an
// error; a server that cannot be reached is only a warning.
func (s *state) checkCredentials(cmd *cobra.Command, endpoint string, creds client.Credentials) error {
	if endpoint == "" {
		endpoint = client.DefaultEndpoint
	}
	cl, err := s.newClient(endpoint, creds)
	if err != nil {
		return err
	}
	_, err = cl.ListAccounts(cmd.Context())
	switch latchkey.ErrorCode(err) {
	case "", latchkey.EFORBIDDEN: // a verifier signs in but may not list
		return nil
	case latchkey.EUNAVAILABLE:
		fmt.Fprintf(cmd.ErrOrStderr(), "latchkey: warning: could not check the key: %s\n", errMessage(err))
		return nil
	case latchkey.EUNAUTHORIZED:
		return latchkey.Errorf(latchkey.EUNAUTHORIZED, "the server at %s refused access key %s (unknown, Inactive, or not an admin key); the profile was not saved (--no-check saves it anyway)", endpoint, creds.AccessKeyID)
	}
	return err
}

// ask prompts for a value on w; Enter keeps def. It reads the line itself
// rather than through state.stdin: a background reader would take the
// keystrokes of the secret that follows.
func ask(in io.Reader, w io.Writer, label, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(w, "%s [%s]: ", label, def)
	} else {
		fmt.Fprintf(w, "%s: ", label)
	}
	line, err := readLine(in)
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("reading %s: %w", strings.ToLower(label), err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return def, nil
	}
	return line, nil
}

// readLine reads up to a newline one byte at a time, so that nothing after
// the line is consumed.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(c[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// readSecret reads the secret from the terminal without echo. Enter keeps
// the current one.
func readSecret(in io.Reader, w io.Writer, current string) (string, error) {
	hint := ""
	if current != "" {
		hint = " [" + keyformat.Mask(current) + "]"
	}
	fmt.Fprintf(w, "Secret access key%s: ", hint)
	f, ok := in.(*os.File)
	if !ok {
		return "", errors.New("cannot read a secret without echo from this input")
	}
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("reading the secret: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *state) newConfigureListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Show the settings the CLI would use, and where each comes from",
		Long: `Show the endpoint, profile and credentials the CLI would use, and where each
comes from (flag, environment, profile, default). The secret is masked.

JSON OUTPUT
  {"profile": {"value", "source"}, "endpoint_url": {...},
   "access_key_id": {...}, "secret_access_key": {...} (masked),
   "credentials_file": "...", "warnings": [...]}

EXAMPLES
  latchkey configure list
  LATCHKEY_PROFILE=ci latchkey configure list`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := s.printer(cmd)
			if err != nil {
				return err
			}
			cfg, err := s.config()
			if err != nil {
				return err
			}
			type setting struct {
				Value  string `json:"value"`
				Source string `json:"source"`
			}
			none := func(v, src string) setting {
				if src == "" {
					return setting{"", "not set"}
				}
				return setting{v, src}
			}
			secret := ""
			if cfg.Credentials.SecretAccessKey != "" {
				secret = keyformat.Mask(cfg.Credentials.SecretAccessKey)
			}
			warnings := cfg.warnings
			if warnings == nil {
				warnings = []string{}
			}
			js := struct {
				Profile  setting  `json:"profile"`
				Endpoint setting  `json:"endpoint_url"`
				ID       setting  `json:"access_key_id"`
				Secret   setting  `json:"secret_access_key"`
				File     string   `json:"credentials_file"`
				Warnings []string `json:"warnings"`
			}{setting{cfg.Profile, cfg.ProfileSource}, setting{cfg.Endpoint, cfg.EndpointSource},
				none(cfg.Credentials.AccessKeyID, cfg.CredentialsSource), none(secret, cfg.CredentialsSource),
				cfg.CredentialsFile, warnings}
			v := view{JSON: js, Headers: []string{"NAME", "VALUE", "SOURCE"}}
			for _, r := range []struct {
				name string
				s    setting
			}{{"profile", js.Profile}, {"endpoint_url", js.Endpoint}, {"access_key_id", js.ID}, {"secret_access_key", js.Secret},
				{"credentials_file", setting{cfg.CredentialsFile, "env " + EnvCredentialsFile + " or default"}}} {
				v.Rows = append(v.Rows, []cell{c(r.name), c(dash(r.s.Value)), c(r.s.Source)})
			}
			if err := p.Print(v); err != nil {
				return err
			}
			if p.format != formatJSON {
				for _, w := range warnings {
					fmt.Fprintf(p.err, "latchkey: warning: %s\n", w)
				}
			}
			return nil
		},
	}
}
