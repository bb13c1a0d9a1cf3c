package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/latchkey/latchkey"
)

// codes maps an HTTP status to the error code the server uses for it. It is
// the reverse of the server's table (internal/httpapi/error.go) and is used
// only when a response carries no code of its own (a proxy's error page).
var codes = map[int]string{
	http.StatusBadRequest:            latchkey.EINVALID,
	http.StatusUnauthorized:          latchkey.EUNAUTHORIZED,
	http.StatusForbidden:             latchkey.EFORBIDDEN,
	http.StatusNotFound:              latchkey.ENOTFOUND,
	http.StatusMethodNotAllowed:      latchkey.EMETHOD,
	http.StatusConflict:              latchkey.ECONFLICT,
	http.StatusPreconditionFailed:    latchkey.EPRECONDITION,
	http.StatusRequestEntityTooLarge: latchkey.ETOOLARGE,
	http.StatusUnsupportedMediaType:  latchkey.EUNSUPPORTED,
	http.StatusTooManyRequests:       latchkey.ERATELIMITED,
	http.StatusInternalServerError:   latchkey.EINTERNAL,
	http.StatusBadGateway:            latchkey.EUNAVAILABLE,
	http.StatusServiceUnavailable:    latchkey.EUNAVAILABLE,
	http.StatusGatewayTimeout:        latchkey.EUNAVAILABLE,
}

// CodeForStatus returns the error code for an HTTP status without a body:
// EINTERNAL for statuses the server does not use.
func CodeForStatus(status int) string {
	if c, ok := codes[status]; ok {
		return c
	}
	return latchkey.EINTERNAL
}

// errorBody is the JSON shape of every error the server sends.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// responseError turns a non-2xx response into a *latchkey.Error with the
// server's own code and message, keeping codes this client does not know.
func responseError(resp *http.Response, body io.Reader) error {
	var eb errorBody
	if err := json.NewDecoder(body).Decode(&eb); err == nil && eb.Error.Code != "" {
		return &latchkey.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return latchkey.Errorf(CodeForStatus(resp.StatusCode), "the server answered %s without a latchkey error body", statusText(resp.StatusCode))
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return fmt.Sprintf("%d %s", status, t)
	}
	return fmt.Sprint(status)
}
