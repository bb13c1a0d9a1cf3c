package cli

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/spf13/cobra"
)

// Environment variables the CLI reads.
const (
	EnvEndpointURL     = "LATCHKEY_ENDPOINT_URL"
	EnvProfile         = "LATCHKEY_PROFILE"
	EnvAccessKeyID     = "LATCHKEY_ACCESS_KEY_ID"
	EnvSecretAccessKey = "LATCHKEY_SECRET_ACCESS_KEY"
	EnvCredentialsFile = "LATCHKEY_SHARED_CREDENTIALS_FILE"
	EnvOutput          = "LATCHKEY_OUTPUT"
	EnvNoColor         = "NO_COLOR"
)

// state is what the commands of one root share: the environment, the global
// flags, and the configuration resolved from them once.
type state struct {
	env Env

	endpointURL string
	profile     string
	output      string
	noColor     bool
	account     string

	once sync.Once
	cfg  *config
	err  error

	in *input
}

// stdin returns the command's standard input, read line by line.
func (s *state) stdin(cmd *cobra.Command) *input {
	if s.in == nil {
		s.in = newInput(cmd.InOrStdin(), !s.env.IsTerminal(cmd.InOrStdin()))
	}
	return s.in
}

func (s *state) addGlobalFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&s.endpointURL, "endpoint-url", "", "latchkey server URL (env "+EnvEndpointURL+"; else the profile's endpoint_url; else "+client.DefaultEndpoint+")")
	f.StringVar(&s.profile, "profile", "", "credentials profile to use (env "+EnvProfile+"; default \"default\")")
	f.StringVarP(&s.output, "output", "o", "", "output format: "+latchkey.Choices(outputFormats)+" (env "+EnvOutput+"; default table on a terminal, text otherwise)")
	f.BoolVar(&s.noColor, "no-color", false, "do not color the table output (also when "+EnvNoColor+" is set)")
	f.StringVar(&s.account, "account", "", "account to act on (operators only; default: your own, or \"default\")")
	completeChoices(root, "output", outputFormats)
	_ = root.RegisterFlagCompletionFunc("profile", s.completeProfiles)
}

// config is where each setting came from, for configure list and messages.
type config struct {
	Endpoint          string
	EndpointSource    string
	Profile           string
	ProfileSource     string
	CredentialsFile   string
	Credentials       client.Credentials
	CredentialsSource string // "" when no credentials were found
	profileExists     bool
	profileNames      []string
	warnings          []string
}

// setting is one resolved value and where it came from.
func (s *state) setting(flagValue, flagName, envName string) (string, string) {
	if flagValue != "" {
		return flagValue, "--" + flagName
	}
	if v := s.env.Getenv(envName); v != "" {
		return v, "env " + envName
	}
	return "", ""
}

// credentialsFile is where profiles are read and written by default.
func (s *state) credentialsFile() string {
	if p := s.env.Getenv(EnvCredentialsFile); p != "" {
		return p
	}
	return credfile.DefaultPath()
}

// config resolves the endpoint, the profile and the credential chain:
// the environment variables, then the profile. Secrets are never taken
// from flags.
func (s *state) config() (*config, error) {
	s.once.Do(func() { s.cfg, s.err = s.loadConfig() })
	return s.cfg, s.err
}

func (s *state) loadConfig() (*config, error) {
	c := &config{CredentialsFile: s.credentialsFile()}
	c.Profile, c.ProfileSource = s.setting(s.profile, "profile", EnvProfile)
	if c.Profile == "" {
		c.Profile, c.ProfileSource = "default", "default"
	}
	f, err := credfile.Read(c.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("reading credentials file: %w", err)
	}
	c.profileNames = f.Profiles()
	p := f.Profile(c.Profile)
	c.profileExists = p != nil

	id, secret := s.env.Getenv(EnvAccessKeyID), s.env.Getenv(EnvSecretAccessKey)
	switch {
	case id != "" && secret != "":
		c.Credentials = client.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		c.CredentialsSource = "env " + EnvAccessKeyID + ", " + EnvSecretAccessKey
	case id != "" || secret != "":
		set, unset := EnvAccessKeyID, EnvSecretAccessKey
		if secret != "" {
			set, unset = unset, set
		}
		return nil, UsageErrorf("%s is set but %s is not; set both, or unset %s to use the credentials file", set, unset, set)
	case p != nil && p[credfile.KeySecretAccessKey] != "":
		c.Credentials = client.Credentials{AccessKeyID: p[credfile.KeyAccessKeyID], SecretAccessKey: p[credfile.KeySecretAccessKey]}
		c.CredentialsSource = fmt.Sprintf("profile %q in %s", c.Profile, c.CredentialsFile)
		c.warnings = credfile.Warnings(c.CredentialsFile)
	}

	c.Endpoint, c.EndpointSource = s.setting(s.endpointURL, "endpoint-url", EnvEndpointURL)
	if c.Endpoint == "" && p != nil && p[credfile.KeyEndpointURL] != "" {
		c.Endpoint, c.EndpointSource = p[credfile.KeyEndpointURL], fmt.Sprintf("profile %q", c.Profile)
	}
	if c.Endpoint == "" {
		c.Endpoint, c.EndpointSource = client.DefaultEndpoint, "default"
	}
	return c, nil
}

// client returns a client of the configured server with the configured
// credentials, printing the credentials file's warnings once.
func (s *state) client(cmd *cobra.Command) (*client.Client, error) {
	c, err := s.config()
	if err != nil {
		return nil, err
	}
	if c.CredentialsSource == "" {
		if c.ProfileSource != "default" && !c.profileExists {
			return nil, UsageErrorf("profile %q (from %s) is not in %s%s; run 'latchkey configure --profile %s' to add it",
				c.Profile, c.ProfileSource, c.CredentialsFile, knownProfiles(c.profileNames), c.Profile)
		}
		return nil, UsageErrorf("no credentials: set %s and %s, or run 'latchkey configure' to write profile %q in %s",
			EnvAccessKeyID, EnvSecretAccessKey, c.Profile, c.CredentialsFile)
	}
	for _, w := range c.warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "latchkey: warning: %s\n", w)
	}
	c.warnings = nil
	return s.newClient(c.Endpoint, c.Credentials)
}

func (s *state) newClient(endpoint string, creds client.Credentials) (*client.Client, error) {
	hc := s.env.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	cl, err := client.New(endpoint, client.WithCredentials(creds), client.WithHTTPClient(hc),
		client.WithUserAgent("latchkey-cli/"+Version))
	if err != nil {
		return nil, UsageErrorf("--endpoint-url %q: %s", endpoint, errMessage(err))
	}
	return cl, nil
}

func knownProfiles(names []string) string {
	if len(names) == 0 {
		return ""
	}
	names = append([]string(nil), names...)
	sort.Strings(names)
	return " (profiles there: " + strings.Join(names, ", ") + ")"
}

// checkSaveTarget refuses a profile that cannot take a new key: the one the
// CLI itself signs in with (overwriting it would lock the CLI out). Commands
// call it before creating a key, so that no key is created in vain.
func (s *state) checkSaveTarget(path, name string) error {
	if name == "" {
		return UsageErrorf("--save-to-profile needs a profile name, e.g. --save-to-profile billing")
	}
	c, err := s.config()
	if err == nil && strings.HasPrefix(c.CredentialsSource, "profile ") && sameFile(c.CredentialsFile, path) && c.Profile == name {
		return UsageErrorf("--save-to-profile %s: that profile holds the credentials this command runs with; choose another profile name", name)
	}
	return nil
}

// saveKey writes an access key into profile name of the credentials file at
// path, keeping the profile's other settings (and any other profile). It
// refuses the profile the CLI itself signs in with: overwriting it would
// lock the CLI out. It says what it did on w, and warns on errw.
func (s *state) saveKey(w, errw io.Writer, path, name, id, secret string) error {
	return s.saveKeyFields(w, errw, path, name, id, credfile.KeySecretAccessKey, secret)
}

// saveKeyFields writes key id to profile name with its credential under
// field: a bearer key's secret (KeySecretAccessKey) or a signing key's
// private half (KeySigningKey). The other kind's field is removed, so a
// profile never holds two credentials for one key ID.
func (s *state) saveKeyFields(w, errw io.Writer, path, name, id, field, value string) error {
	if err := s.checkSaveTarget(path, name); err != nil {
		return err
	}
	f, err := credfile.Read(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	p := credfile.Profile{}
	for k, v := range f.Profile(name) {
		p[k] = v
	}
	delete(p, credfile.KeySecretAccessKey)
	delete(p, credfile.KeySigningKey)
	p[credfile.KeyAccessKeyID] = id
	p[field] = value
	moved, err := credfile.SaveProfile(path, name, p)
	if err != nil {
		return fmt.Errorf("saving profile %q to %s: %w", name, path, err)
	}
	what := "secret"
	if field == credfile.KeySigningKey {
		what = "private key"
	}
	fmt.Fprintf(w, "Saved access key %s to profile %q in %s (mode 0600); the %s is not shown.\n", id, name, path, what)
	if moved != "" {
		fmt.Fprintf(w, "The key the profile held before is kept as profile %q.\n", moved)
	}
	for _, warn := range credfile.Warnings(path) {
		fmt.Fprintf(errw, "latchkey: warning: %s\n", warn)
	}
	return nil
}

func sameFile(a, b string) bool {
	return cleanPath(a) == cleanPath(b)
}
