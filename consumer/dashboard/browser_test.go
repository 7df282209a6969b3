package dashboard

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
)

// ArtifactsEnv names a directory where the browser test leaves its
// screenshots; without it they go to the test's artifact directory
// (go test -artifacts keeps it).
const ArtifactsEnv = "TRAFFICLAB_ARTIFACTS"

// chromium finds Debian's chromium; without it the test skips, or fails
// when CI requires the integration dependencies.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(mariadbtest.RequireEnv) == "1" {
		t.Fatalf("chromium is required (%s=1) but not installed: run scripts/test-deps.sh", mariadbtest.RequireEnv)
	}
	t.Skip("chromium is not installed: run scripts/test-deps.sh to install it")
	return ""
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv(ArtifactsEnv); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// TestBrowser loads the dashboard in headless Chromium over a stored range
// of traffic: no request fails, every chart is drawn, the page's request
// total is MySQL's, and the language switch turns the page (and the
// charts) Chinese. Screenshots of both languages are kept.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	st := newStore(t)
	end := time.Now().UTC().Truncate(time.Minute)
	seed(t, st, end, 3*time.Hour)
	from, to := end.Add(-2*time.Hour), end.Add(-30*time.Minute)
	ctx := context.Background()
	if _, err := st.FireAlert(ctx, "backend_silent", "web-2", to.Add(-20*time.Minute), 0, 240); err != nil {
		t.Fatal(err)
	}
	var want uint64
	if err := st.DB().QueryRow(`SELECT SUM(requests) FROM traffic_minute WHERE minute >= ? AND minute < ?`, from, to).Scan(&want); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(newServer(t, st).Handler())
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1400, 1800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()

	var mu sync.Mutex
	var failed []string
	requests := 0
	listen := func(ev any) { // runs in chromedp's read loop: quick, no calls
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			requests++
			if e.Response.Status >= 400 {
				failed = append(failed, fmt.Sprintf("%s: HTTP %d", e.Response.URL, int(e.Response.Status)))
			}
		case *network.EventLoadingFailed:
			failed = append(failed, fmt.Sprintf("request %s: %s", e.RequestID, e.ErrorText))
		}
	}
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithListener(listen))
	defer cancelBrowser()
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	run := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func() []byte { // quality 100 makes a PNG
		t.Helper()
		b, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return b
	}

	// The login on every request the page makes (what the browser does
	// once the user typed it), and a record of what the Content Security
	// Policy blocked (the DevTools-injected script itself is exempt).
	login := func(ctx context.Context) {
		t.Helper()
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`,
		}); err != nil {
			t.Fatal(err)
		}
	}
	cspViolations := func(ctx context.Context) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp`))
		if err != nil || len(v) > 0 {
			t.Errorf("the Content Security Policy blocked %q (%v)", v, err)
		}
	}
	login(bctx)
	page := srv.URL + "/?from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	run("load the page", chromedp.Steps(chromedp.Navigate(page), chromedp.WaitVisible(`body[data-loaded="1"]`)))
	cspViolations(bctx)
	total, firing, title := text(`#total-requests`), text(`#firing-count`), text(`#title`)
	paths, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]int](`Object.fromEntries(["requests","bandwidth","status","backends"].map(n =>
		[n, [...document.querySelectorAll("#chart-" + n + " svg path.series")].filter(p => p.getAttribute("d").length > 20).length]))`))
	if err != nil {
		t.Fatal(err)
	}
	shotEN := shot()
	if title != "Traffic" {
		t.Errorf("title %q, want the English one", title)
	}
	got, err := strconv.ParseUint(strings.ReplaceAll(total, ",", ""), 10, 64)
	if err != nil || got != want {
		t.Errorf("page shows %q requests, MySQL sums %d", total, want)
	}
	if firing != "1" {
		t.Errorf("page shows %q firing alerts, want 1", firing)
	}
	for _, name := range Charts {
		least := 1
		if name == "backends" {
			least = 3
		}
		if paths[name] < least {
			t.Errorf("chart %s has %d drawn lines, want at least %d", name, paths[name], least)
		}
	}

	run("switch the language", chromedp.Steps(chromedp.Click(`#lang-switch`), chromedp.WaitVisible(`body[data-loaded="2"]`)))
	title = text(`#title`)
	legend, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("#chart-requests svg .legend").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	lang, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil {
		t.Fatal(err)
	}
	shotZH := shot()
	if title != "流量监控" || lang != "zh" || !strings.Contains(legend, "全部后端") {
		t.Errorf("after the switch: title %q, lang %q, chart legend %q; want Chinese", title, lang, legend)
	}

	// The range picker reloads the page's data for a preset and keeps it
	// in the URL.
	run("pick 24h", chromedp.Steps(chromedp.Click(`button[data-range="24h"]`), chromedp.WaitVisible(`body[data-loaded="3"]`)))
	search, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.search + " " + document.querySelector('button[data-range="24h"]').className`))
	if err != nil {
		t.Fatal(err)
	}
	if search != "?range=24h active" {
		t.Errorf("after picking 24h: %q, want ?range=24h and the button active", search)
	}
	if got := text(`#total-requests`); got == total {
		t.Errorf("the 24h total %s is the custom range's", got)
	}

	// A browser whose language is Chinese (Accept-Language and
	// navigator.language) gets the Chinese page without switching, in a
	// fresh profile where no choice is saved.
	zctx, cancelZ := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer cancelZ()
	ua, err := chromedp.Run(zctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(zctx, emulation.SetUserAgentOverride,
		emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "zh-CN,zh;q=0.9"}); err != nil {
		t.Fatal(err)
	}
	login(zctx)
	if err := chromedp.Do(zctx, chromedp.Navigate(page), chromedp.WaitVisible(`body[data-loaded="1"]`)); err != nil {
		t.Fatal(err)
	}
	cspViolations(zctx)
	if title, err := chromedp.Run(zctx, chromedp.Text(`#title`)); err != nil || title != "流量监控" {
		t.Errorf("a Chinese browser got title %q (%v), want the Chinese page", title, err)
	}

	dir := artifactDir(t)
	for name, shot := range map[string][]byte{"dashboard-en.png": shotEN, "dashboard-zh.png": shotZH} {
		if len(shot) < 10000 {
			t.Errorf("screenshot %s is only %d bytes", name, len(shot))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Errorf("failed requests:\n%s", strings.Join(failed, "\n"))
	}
	if requests < 8 {
		t.Errorf("saw %d responses; want the page, its assets and its API calls", requests)
	}
}
