package cli

import (
	"encoding/json"

	"github.com/latchkey/latchkey"
)

// metadataFlag reads --metadata: a JSON object, checked here as the server
// checks it so that the message names the flag. "{}" reads as an empty
// object (which removes metadata on update), not as nothing.
func metadataFlag(s string) (json.RawMessage, error) {
	m, err := latchkey.NormalizeMetadata(json.RawMessage(s))
	if err != nil {
		return nil, UsageErrorf("--metadata: %s, e.g. --metadata '{\"plan\":\"pro\"}'", latchkey.ErrorMessage(err))
	}
	if m == nil {
		return json.RawMessage("{}"), nil
	}
	return m, nil
}

// externalIDFlag reads --external-id.
func externalIDFlag(s string) (string, error) {
	if err := latchkey.ValidateExternalID(s); err != nil {
		return "", UsageErrorf("--external-id %q: %s", s, latchkey.ErrorMessage(err))
	}
	return s, nil
}
