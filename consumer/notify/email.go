package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// Email sends notices by SMTP.
type Email struct {
	Addr     string // host:port
	Username string
	Password string
	From     string
	To       []string
	// Mode is "starttls" (the server must offer it), "tls" (implicit) or
	// "none".
	Mode    string
	TLS     *tls.Config // nil: the system's roots, ServerName from Addr
	Timeout time.Duration
}

// Channel implements Notifier.
func (e *Email) Channel() string { return "email" }

// Send delivers n to every recipient in one SMTP transaction.
func (e *Email) Send(ctx context.Context, n Notice) error {
	if err := e.send(ctx, n); err != nil {
		return fmt.Errorf("email via %s: %w", e.Addr, err)
	}
	return nil
}

func (e *Email) send(ctx context.Context, n Notice) error {
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return err
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := e.TLS
	if tc == nil {
		tc = &tls.Config{}
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	var conn net.Conn
	d := &net.Dialer{}
	if e.Mode == "tls" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", e.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", e.Addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("trafficlab"); err != nil {
		return err
	}
	if e.Mode == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("the server does not offer STARTTLS (tls: starttls refuses to send in clear)")
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			return fmt.Errorf("auth as %s: %w", e.Username, err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return err
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("recipient %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(e.message(n)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message renders the notice as a plain-text mail.
func (e *Email) message(n Notice) []byte {
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	subject := "[trafficlab] " + n.Summary
	if n.Repeat > 0 {
		subject += fmt.Sprintf(" (reminder %d)", n.Repeat)
	}
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", e.From)
	hdr("To", strings.Join(e.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@trafficlab>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("X-Trafficlab-Notice", fmt.Sprintf("%d-%s-%d", n.AlertID, n.Status, n.Repeat))
	b.WriteString("\r\n")
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	line("%s", n.Summary)
	line("")
	line("rule:      %s", n.Rule)
	line("scope:     %s", n.Scope)
	line("status:    %s", n.Status)
	line("started:   %s", n.StartedAt.UTC().Format(time.RFC3339))
	if n.EndedAt != nil {
		line("ended:     %s", n.EndedAt.UTC().Format(time.RFC3339))
	}
	line("value:     %g", n.Value)
	line("baseline:  %g", n.Baseline)
	if n.DashboardURL != "" {
		line("dashboard: %s", n.DashboardURL)
	}
	return b.Bytes()
}
