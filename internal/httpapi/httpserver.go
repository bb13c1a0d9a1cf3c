package httpapi

import (
	"log/slog"
	"net/http"
	"time"
)

// MaxHeaderBytes bounds a request's line and headers. Past it net/http
// answers 431 Request Header Fields Too Large itself, in plain text, before
// any handler runs.
const MaxHeaderBytes = 32 << 10

// Timeouts bound each stage of a connection, so that slow clients
// (slowloris) cannot hold the server's connections and memory.
type Timeouts struct {
	ReadHeader time.Duration // request line and headers
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the request headers to the end of the response
	Idle       time.Duration // between requests on a kept-alive connection
}

// DefaultTimeouts are the server's timeouts unless configured otherwise.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 120 * time.Second}

// NewHTTPServer returns the http.Server that serves h with latchkey's
// limits: the timeouts, MaxHeaderBytes, and net/http's own complaints
// logged at warning level.
func NewHTTPServer(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
