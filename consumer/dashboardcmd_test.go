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
)

func TestMain(m *testing.M) {
	code := m.Run()
	mariadbtest.StopShared()
	os.Exit(code)
}

// TestDashboardCommand serves the dashboard on a fresh database, as the
// dashboard unit does: it migrates the schema itself, answers /healthz and
// the API, and stops cleanly on its context's end (SIGTERM).
func TestDashboardCommand(t *testing.T) {
	srv := mariadbtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mc, err := srv.NewDatabase(ctx, fmt.Sprintf("dc%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
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
	cfg.Dashboard.Listen = addr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveDashboard(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/healthz")
		if code == 200 && strings.TrimSpace(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for path, want := range map[string]string{
		"/api/overview?range=6h": `"step_seconds":60`,
		"/api/alerts?range=24h":  `"firing":[]`,
		"/api/top?range=1h":      `"uris":[]`,
		"/":                      `/static/app.js`,
	} {
		if code, body := get(path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %.200s; want 200 with %s", path, code, body, want)
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
}
