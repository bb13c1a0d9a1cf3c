package cli

import (
	"os"

	"github.com/latchkey/latchkey"
)

// certificateFlag reads the PEM certificate file of --bind-certificate
// and returns its x5t#S256: the thumbprint is sent, not the certificate.
func certificateFlag(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", UsageErrorf("--bind-certificate %s: %v", file, err)
	}
	t, err := latchkey.ParseCertificatePEM(b)
	if err != nil {
		return "", UsageErrorf("--bind-certificate %s: %s", file, latchkey.ErrorMessage(err))
	}
	return t.String(), nil
}
