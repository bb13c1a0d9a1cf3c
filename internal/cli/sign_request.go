package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/spf13/cobra"
)

func (s *state) newSignRequestCmd() *cobra.Command {
	var (
		method, data, dataBinary, credsAt, print string
		headers                                  []string
		send                                     bool
	)
	cmd := &cobra.Command{
		Use:   "sign-request [flags] URL",
		Short: "Sign an HTTP request with a signing key (RFC 9421), for debugging: print it or send it",
		Long: `Sign a curl-like request with the private key of a signing key, as the Go
SDK's SigningTransport does: Signature-Input and Signature over @method,
@target-uri and, with a body, content-digest (RFC 9530, which is set too),
with created, a fresh nonce, keyid (the access key ID) and alg.

The key is the profile's (--profile, default "default") in the credentials
file: latchkey_access_key_id and latchkey_signing_key, as
'create-access-key --generate-key-pair --save-to-profile NAME' wrote them.
The private key is read there and never printed or sent.

Without --send, the signed headers are printed (--print headers), or a curl
command that sends the request (--print curl). The signature is valid for
the window (serve --signature-window, 60 s by default) and its nonce once:
send the same signed request twice and the second is refused with
NONCE_REPLAYED. With --send the request is sent and the answer's status
and body are printed.

Sign the path the API serves: latchkey judges the canonical path (dot
segments removed, slashes merged), and a signature over another form of it
does not verify.

EXAMPLES
  latchkey sign-request --profile billing https://api.example.com/orders/7
  latchkey sign-request --profile billing -X POST -H 'Content-Type: application/json' \
      -d '{"parcel":42}' --print curl https://api.example.com/orders
  latchkey sign-request --profile billing --data-binary @order.json --send https://api.example.com/orders`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return UsageErrorf("give the request's URL, e.g. latchkey sign-request https://api.example.com/orders/7")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(args[0])
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
				return UsageErrorf("URL %q: expected an absolute http or https URL without user information or a fragment, e.g. https://api.example.com/orders/7", args[0])
			}
			if print != "headers" && print != "curl" {
				return UsageErrorf("--print must be headers or curl, not %q", print)
			}
			if send && cmd.Flags().Changed("print") {
				return UsageErrorf("give --print or --send, not both")
			}
			body, err := requestBody(cmd, data, dataBinary)
			if err != nil {
				return err
			}
			if method == "" {
				method = http.MethodGet
				if body != nil {
					method = http.MethodPost
				}
			}
			if m := strings.ToUpper(method); m != method || strings.ContainsAny(method, " \t/:") {
				return UsageErrorf("-X %q: expected an upper-case HTTP method such as GET or POST", method)
			}
			h := http.Header{}
			for _, hv := range headers {
				name, value, ok := strings.Cut(hv, ":")
				if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t") {
					return UsageErrorf("-H %q: expected \"Name: value\"", hv)
				}
				h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			for _, n := range []string{"Signature", "Signature-Input", "Content-Digest", "Authorization", "X-Api-Key"} {
				if h.Get(n) != "" {
					return UsageErrorf("-H %s: sign-request sets the signature headers itself, and a signed request carries no bearer credential", n)
				}
			}
			signer, err := s.profileSigner(credsAt)
			if err != nil {
				return err
			}
			path := u.EscapedPath()
			if path == "" {
				path = "/"
			}
			m := httpsig.Message{Method: method, Scheme: u.Scheme, Authority: u.Host, Path: path, Query: u.RawQuery, Header: h}
			if err := signer.Sign(&m, body); err != nil {
				return fmt.Errorf("signing the request: %w", err)
			}
			out := cmd.OutOrStdout()
			if send {
				return sendSigned(cmd, out, method, u, h, body)
			}
			if print == "curl" {
				fmt.Fprint(out, curlCommand(method, u, h, body, dataBinary))
				return nil
			}
			for _, n := range sortedNames(h) {
				for _, v := range h[n] {
					fmt.Fprintf(out, "%s: %s\n", n, v)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&method, "request", "X", "", "the request's method (default GET, or POST with a body)")
	f.StringArrayVarP(&headers, "header", "H", nil, `a header to send (and that a middlebox must not change), "Name: value"; repeatable`)
	f.StringVarP(&data, "data", "d", "", "the request body, as given")
	f.StringVar(&dataBinary, "data-binary", "", "the request body, as given, or @FILE to read it from a file (@- for standard input)")
	f.StringVar(&credsAt, "credentials-file", "", "credentials file holding the profile's signing key (default ~/.latchkey/credentials, env "+EnvCredentialsFile+")")
	f.StringVar(&print, "print", "headers", "what to print: headers (the signed headers), or curl (a curl command that sends the request)")
	f.BoolVar(&send, "send", false, "send the signed request and print the answer's status and body")
	return cmd
}

// requestBody is -d or --data-binary; nil when neither was given.
func requestBody(cmd *cobra.Command, data, dataBinary string) ([]byte, error) {
	d, db := cmd.Flags().Changed("data"), cmd.Flags().Changed("data-binary")
	switch {
	case d && db:
		return nil, UsageErrorf("give -d or --data-binary, not both")
	case d:
		return []byte(data), nil
	case !db:
		return nil, nil
	}
	name, ok := strings.CutPrefix(dataBinary, "@")
	if !ok {
		return []byte(dataBinary), nil
	}
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, UsageErrorf("--data-binary @%s: %v", name, err)
	}
	return b, nil
}

// profileSigner reads the profile's signing key.
func (s *state) profileSigner(credsAt string) (*httpsig.Signer, error) {
	c, err := s.config()
	if err != nil {
		return nil, err
	}
	path := c.CredentialsFile
	if credsAt != "" {
		path = credsAt
	}
	f, err := credfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("reading credentials file: %w", err)
	}
	p := f.Profile(c.Profile)
	if p == nil || p[credfile.KeySigningKey] == "" || p[credfile.KeyAccessKeyID] == "" {
		return nil, UsageErrorf("--profile %s: %s has no signing key in that profile (latchkey_access_key_id and latchkey_signing_key); make one with 'latchkey create-access-key --generate-key-pair --save-to-profile %s'",
			c.Profile, path, c.Profile)
	}
	k, err := client.ParseSigningKey(p[credfile.KeySigningKey])
	if err != nil {
		return nil, UsageErrorf("--profile %s: its latchkey_signing_key cannot be read: %v", c.Profile, err)
	}
	return &httpsig.Signer{KeyID: p[credfile.KeyAccessKeyID], Key: k}, nil
}

// curlCommand is a curl command line that sends the signed request.
func curlCommand(method string, u *url.URL, h http.Header, body []byte, dataBinary string) string {
	var b strings.Builder
	b.WriteString("curl -X " + method)
	for _, n := range sortedNames(h) {
		for _, v := range h[n] {
			b.WriteString(" \\\n  -H " + shellQuote(n+": "+v))
		}
	}
	if body != nil {
		if strings.HasPrefix(dataBinary, "@") && dataBinary != "@-" {
			b.WriteString(" \\\n  --data-binary " + shellQuote(dataBinary))
		} else {
			b.WriteString(" \\\n  --data-binary " + shellQuote(string(body)))
		}
	}
	b.WriteString(" \\\n  " + shellQuote(u.String()) + "\n")
	return b.String()
}

func sortedNames(h http.Header) []string {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// sendSigned sends the signed request and prints the answer.
func sendSigned(cmd *cobra.Command, out io.Writer, method string, u *url.URL, h http.Header, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, u.String(), rd)
	if err != nil {
		return UsageErrorf("URL %q: %v", u.String(), err)
	}
	req.Header = h
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("sending the request: %w", err)
	}
	defer resp.Body.Close()
	fmt.Fprintf(out, "%s %s\n", resp.Proto, resp.Status)
	if c := resp.Header.Get("X-Latchkey-Code"); c != "" {
		fmt.Fprintf(out, "X-Latchkey-Code: %s\n", c)
	}
	fmt.Fprintln(out)
	_, err = io.Copy(out, io.LimitReader(resp.Body, 1<<20))
	return err
}
