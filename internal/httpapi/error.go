package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// codes maps error codes to HTTP statuses. The Go client reverses it.
var codes = map[string]int{
	latchkey.EINVALID:      http.StatusBadRequest,
	latchkey.EMALFORMED:    http.StatusBadRequest,
	latchkey.ECREDSINURL:   http.StatusBadRequest,
	latchkey.EDESTINATION:  http.StatusBadRequest,
	latchkey.EUNAUTHORIZED: http.StatusUnauthorized,
	latchkey.EFORBIDDEN:    http.StatusForbidden,
	latchkey.ENOTFOUND:     http.StatusNotFound,
	latchkey.EMETHOD:       http.StatusMethodNotAllowed,
	latchkey.EEXISTS:       http.StatusConflict,
	latchkey.ECONFLICT:     http.StatusConflict,
	latchkey.ELIMIT:        http.StatusConflict,
	latchkey.EKEYACTIVE:    http.StatusConflict,
	latchkey.EPRECONDITION: http.StatusPreconditionFailed,
	latchkey.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	latchkey.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	latchkey.ERATELIMITED:  http.StatusTooManyRequests,
	latchkey.EINTERNAL:     http.StatusInternalServerError,
	latchkey.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// StatusFor returns the HTTP status of an error code.
func StatusFor(code string) int {
	if s, ok := codes[code]; ok {
		return s
	}
	if isDecisionCode(code) {
		return StatusForCode(latchkey.Code(code)) // as the forward-auth surface answers it
	}
	return http.StatusInternalServerError
}

func isDecisionCode(code string) bool {
	_, ok := codeMessages[latchkey.Code(code)]
	return ok
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Error writes err as {"error":{"code","message"}} with the status of its
// code. Internal errors are logged with their cause and answered with
// "internal error" only.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := latchkey.ErrorCode(err), latchkey.ErrorMessage(err)
	status := StatusFor(code)
	if status >= 500 {
		s.Log.Error("request failed", "method", r.Method, "path", safePath(r), "code", code, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", Basic realm="latchkey"`)
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var body ErrorBody
	// Messages may quote the caller's input (a bad name, an unknown field);
	// anything shaped like a secret in it is masked.
	body.Error.Code, body.Error.Message = code, keyformat.MaskSecrets(msg)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// logAttrs are attached to every request log line. They never include the
// query string or headers: either may carry a credential.
func logAttrs(r *http.Request, status int) []any {
	return []any{"method", r.Method, "path", safePath(r), "status", status}
}
