package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/internal/golden"
)

// runParse runs `consumer parse args...` with stdin as input.
func runParse(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetIn(stdin)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(append([]string{"parse"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

// TestParseGolden runs the parse command over a mix of raw lines, filebeat
// events and garbage; go test -update rewrites the expected output.
func TestParseGolden(t *testing.T) {
	for _, tc := range []struct {
		input, golden string
		args          []string
	}{
		{"testdata/parse.input", "testdata/parse.golden", nil},
		{"testdata/parse_combined.input", "testdata/parse_combined.golden", []string{"--format", "combined"}},
	} {
		t.Run(tc.input, func(t *testing.T) {
			in, err := os.ReadFile(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			out, err := runParse(t, bytes.NewReader(in), tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, tc.golden, []byte(out))

			// One valid JSON object per input line, in order.
			outLines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			inLines := strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
			if len(outLines) != len(inLines) {
				t.Fatalf("%d output lines for %d input lines", len(outLines), len(inLines))
			}
			for i, l := range outLines {
				var v map[string]any
				if err := json.Unmarshal([]byte(l), &v); err != nil {
					t.Fatalf("output line %d is not a JSON object: %v: %s", i+1, err, l)
				}
				if n, ok := v["line"]; ok && n != float64(i+1) {
					t.Errorf("output line %d reports line %v", i+1, n)
				}
			}
		})
	}
}

func TestParseFormats(t *testing.T) {
	in := "192.0.2.1 - - [10/Oct/2026:13:55:36 -0700] \"GET / HTTP/1.0\" 200 5 \"-\" \"-\"\n"
	out, err := runParse(t, strings.NewReader(in), "--format", nginxlog.CombinedFormat)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, `{"remote_addr":"192.0.2.1","remote_user":null,"time_local":"2026-10-10T13:55:36-07:00",`) {
		t.Errorf("combined as a format string: %s", out)
	}

	out, err = runParse(t, strings.NewReader(`{"s":200,"ua":"a\"b"}`+"\n"), "--format", `{"s":$status,"ua":"$http_user_agent"}`, "--escape", "json")
	if err != nil {
		t.Fatal(err)
	}
	if out != `{"status":200,"http_user_agent":"a\"b"}`+"\n" {
		t.Errorf("escape=json: %s", out)
	}

	if _, err := runParse(t, strings.NewReader(""), "--format", "$remote_addr$status"); err == nil ||
		!strings.Contains(err.Error(), "--format: log_format column 13: $status follows $remote_addr") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := runParse(t, strings.NewReader(""), "--escape", "html"); err == nil {
		t.Error("bad escape accepted")
	}
	if _, err := runParse(t, strings.NewReader(""), "extra"); err == nil {
		t.Error("argument accepted")
	}
	if out, err := runParse(t, strings.NewReader("")); err != nil || out != "" {
		t.Errorf("empty input: %q %v", out, err)
	}
}

func TestParseLongLines(t *testing.T) {
	uri := "/" + strings.Repeat("x", 3<<20) // 3 MiB, far beyond the reader's buffer
	line := `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET ` + uri + ` HTTP/1.1" 414 0 0 0 0.000 "-" "-" "h"`
	in := line + "\n" + "junk\n" + line // the last line has no newline
	out, err := runParse(t, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d output lines", len(lines))
	}
	for _, i := range []int{0, 2} {
		var v struct {
			URI    string `json:"request_uri"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &v); err != nil || v.URI != uri || v.Status != 414 {
			t.Errorf("line %d: %v, %d-byte URI, status %d", i+1, err, len(v.URI), v.Status)
		}
	}
	if !strings.HasPrefix(lines[1], `{"error":"column 1: $remote_addr: `) || !strings.HasSuffix(lines[1], `,"line":2}`) {
		t.Errorf("line 2: %s", lines[1])
	}
}

func TestParseTooLong(t *testing.T) {
	defer func(m int) { maxLine = m }(maxLine)
	maxLine = 1 << 20
	huge := io.MultiReader(strings.NewReader("junk\n"), io.LimitReader(neverNewline{}, int64(maxLine)+10),
		strings.NewReader("\nmore junk\n"))
	out, err := runParse(t, huge)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"error":"column 1: $remote_addr: no \" \" after it (value starts \"junk\")","line":1}` + "\n" +
		`{"error":"line too long: more than 1048576 bytes, skipped","line":2}` + "\n" +
		`{"error":"column 6: $realip_remote_addr: no \" [\" after it (value starts \"junk\")","line":3}` + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

type neverNewline struct{}

func (neverNewline) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestParseStdinFails(t *testing.T) {
	in := io.MultiReader(strings.NewReader("junk\n"), iotest.ErrReader(errors.New("disk on fire")))
	out, err := runParse(t, in)
	if err == nil || err.Error() != "reading stdin: disk on fire" {
		t.Errorf("error %v", err)
	}
	// The lines before the failure are still written.
	if !strings.HasSuffix(out, `"line":1}`+"\n") {
		t.Errorf("output %q", out)
	}
}

func TestParseStdoutFails(t *testing.T) {
	cmd := newRootCmd()
	cmd.SetIn(strings.NewReader(strings.Repeat("junk\n", 100000)))
	cmd.SetOut(failingWriter{})
	cmd.SetArgs([]string{"parse"})
	if err := cmd.Execute(); err == nil || !strings.HasPrefix(err.Error(), "writing stdout: ") {
		t.Errorf("error %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
