package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mariadbtest.StopShared()
	os.Exit(code)
}

// TestDashboardCommand serves the dashboard as the dashboard unit does:
// with a read-only MySQL account on a database the consumer migrated,
// behind its login (/healthz open), with the security headers, and stops
// cleanly on its context's end (SIGTERM). Without a password it refuses
// to start; with a MySQL password that is refused, /healthz says so
// without the server's text.
func TestDashboardCommand(t *testing.T) {
	srv := mariadbtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := fmt.Sprintf("dc%d", os.Getpid())
	mc, err := srv.NewDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := store.Open(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if _, err := writer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	root, err := srv.Root(name)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, host := range []string{"%", "localhost"} {
		for _, q := range []string{
			"CREATE USER IF NOT EXISTS 'dc_ro'@'" + host + "' IDENTIFIED BY 'ro-pw'",
			"GRANT SELECT ON `" + name + "`.* TO 'dc_ro'@'" + host + "'",
		} {
			if _, err := root.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Defaults()
	cfg.Kafka.Brokers = []string{"kafka-1:9092"}
	cfg.MySQL = mc
	cfg.MySQL.User, cfg.MySQL.Password = "dc_ro", "ro-pw"
	cfg.Dashboard.Listen = addr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := serveDashboard(ctx, &cfg, discard); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Fatalf("without dashboard.password: %v, want a refusal", err)
	}
	cfg.Dashboard.Password = "let-me-in"
	done := make(chan error, 1)
	go func() { done <- serveDashboard(ctx, &cfg, discard) }()

	get := func(path, user, pass string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return &http.Response{Header: http.Header{}}, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := get("/healthz", "", "")
		if resp.StatusCode == 200 && strings.TrimSpace(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for path, want := range map[string]string{
		"/api/overview?range=6h": `"step_seconds":60`,
		"/api/alerts?range=24h":  `"firing":[]`,
		"/api/top?range=1h":      `"uris":[]`,
		"/":                      `/static/app.js`,
	} {
		if resp, body := get(path, "admin", "let-me-in"); resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %.200s; want 200 with %s", path, resp.StatusCode, body, want)
		} else if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: headers %v lack nosniff and the CSP", path, resp.Header)
		}
		for _, login := range [][2]string{{"", ""}, {"admin", "let-me-ix"}, {"admin", ""}, {"root", "let-me-in"}, {"admin", "let-me-in-please"}} {
			if resp, body := get(path, login[0], login[1]); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, want) ||
				!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s as %q/%q: %d %.100s, want 401 asking for basic auth", path, login[0], login[1], resp.StatusCode, body)
			}
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dashboard stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dashboard did not stop")
	}

	// A MySQL account that is refused: /healthz answers 503 without
	// MySQL's message (it named the account and the client's address).
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	cfg.MySQL.Password = "wrong"
	done = make(chan error, 1)
	go func() { done <- serveDashboard(ctx2, &cfg, discard) }()
	deadline = time.Now().Add(30 * time.Second)
	for {
		resp, body := get("/healthz", "", "")
		if resp.StatusCode == http.StatusServiceUnavailable {
			if strings.Contains(body, "denied") || strings.Contains(body, "dc_ro") || strings.TrimSpace(body) != "mysql unavailable" {
				t.Errorf("/healthz says %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, body := get("/api/overview", "admin", "let-me-in"); resp.StatusCode != 503 || strings.Contains(body, "denied") || strings.Contains(body, "dc_ro") {
		t.Errorf("/api/overview with MySQL refusing: %d %s", resp.StatusCode, body)
	}
	cancel2()
	<-done
}
