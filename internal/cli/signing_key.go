package cli

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/credfile"
)

// signingFlags is what create-access-key's signing-key flags asked for.
type signingFlags struct {
	publicPEM string        // "" for a bearer key
	private   crypto.Signer // set with --generate-key-pair
}

// signingKeyFlags checks --public-key-file, --generate-key-pair and
// --key-algorithm, reads or makes the key, and returns what to send.
func signingKeyFlags(file string, generate bool, alg, profile, principal string) (signingFlags, error) {
	var out signingFlags
	if file == "" && !generate {
		return out, nil
	}
	switch {
	case file != "" && generate:
		return out, UsageErrorf("give --public-key-file or --generate-key-pair, not both")
	case principal != "":
		return out, UsageErrorf("signing keys are for applications: --public-key-file and --generate-key-pair do not go with --principal-name")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return out, UsageErrorf("--public-key-file %s: %v", file, err)
		}
		pub, err := latchkey.ParsePublicKey(string(b))
		if err != nil {
			return out, UsageErrorf("--public-key-file %s: %s", file, latchkey.ErrorMessage(err))
		}
		out.publicPEM = pub.PEM
		return out, nil
	}
	if profile == "" {
		return out, UsageErrorf("--generate-key-pair needs --save-to-profile: the private key is written there and never printed")
	}
	var err error
	switch alg {
	case latchkey.AlgEd25519:
		_, out.private, err = ed25519.GenerateKey(rand.Reader)
	case latchkey.AlgECDSAP256SHA:
		out.private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return out, UsageErrorf("--key-algorithm must be %s or %s, not %q", latchkey.AlgEd25519, latchkey.AlgECDSAP256SHA, alg)
	}
	if err != nil {
		return out, fmt.Errorf("making a key pair: %w", err)
	}
	pub, err := latchkey.NewPublicKey(out.private.Public())
	if err != nil {
		return out, err
	}
	out.publicPEM = pub.PEM
	return out, nil
}

// signingKeyCreated saves a generated private key to its profile and
// shows the new signing key (its fingerprint, never a private key).
func (s *state) signingKeyCreated(p *printer, k *client.CreatedAccessKey, signing signingFlags, credsAt, profile string) error {
	if signing.private != nil {
		der, err := x509.MarshalPKCS8PrivateKey(signing.private)
		if err != nil {
			return err
		}
		if err := s.saveKeyFields(p.info, p.err, credsAt, profile, k.ID, credfile.KeySigningKey, base64.StdEncoding.EncodeToString(der)); err != nil {
			return fmt.Errorf("%w; signing key %s was created but its private key could not be saved: delete it with 'latchkey delete-access-key --access-key-id %s --force' and try again", err, k.ID, k.ID)
		}
	} else {
		profile, credsAt = "", ""
	}
	v := view{JSON: k.AccessKey, Vertical: true,
		Headers: []string{"ACCESS KEY ID", "OWNER", "STATUS", "DESCRIPTION", "KEY TYPE", "ALGORITHM", "FINGERPRINT"},
		Rows: [][]cell{{c(k.ID), c(owner(&k.AccessKey)), statusCell(&k.AccessKey), c(dash(k.Description)),
			c(string(k.KeyType)), c(k.PublicKey.Algorithm), c(k.PublicKey.Fingerprint)}},
	}
	if profile != "" {
		v.JSON = savedKey{AccessKey: k.AccessKey, Profile: profile, File: credsAt}
		v.Headers = append(v.Headers, "SAVED TO PROFILE", "CREDENTIALS FILE")
		v.Rows[0] = append(v.Rows[0], c(profile), c(credsAt))
	}
	return p.Print(v)
}
