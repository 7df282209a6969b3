package dashboard

import (
	"log/slog"
	"net/http"
	"time"
)

// Timeouts of the dashboard's HTTP server: a client that sends its
// request slowly, reads the answer slowly or keeps an idle connection
// holds a connection and a goroutine for at most these.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts fit a page whose largest answer (a 62-day overview) is
// computed within the request timeout (Options.RequestTimeout, 20 s).
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second}

// MaxHeaderBytes bounds a request's headers (Go's default is 1 MB): the
// page's requests carry a few hundred bytes.
const MaxHeaderBytes = 16 << 10

// NewHTTPServer returns the server for h with the timeouts and header
// limit, logging its own errors (TLS probes, cut connections) at debug.
func NewHTTPServer(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
