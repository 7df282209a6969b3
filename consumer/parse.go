package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/consumer/nginxlog"
)

func newParseCmd() *cobra.Command {
	var format, escape string
	cmd := &cobra.Command{
		Use:   "parse",
		Short: "Parse access-log lines from stdin into JSON, one object per line",
		Long: `Parse reads nginx access-log lines on stdin - raw lines, or filebeat JSON
events carrying them in "message" - and writes one JSON object per input
line on stdout, in order. Keys are the nginx variable names without "$";
$request also yields request_method, request_uri and server_protocol;
times are RFC 3339 with the line's offset, numbers are numbers, "-" is
null, $upstream_* lists are arrays, and nginx's \xXX escapes are decoded.
A filebeat event adds "backend", the host that shipped the line.

A line that does not parse prints {"error":"...","line":N} with its 1-based
line number, and parsing goes on.`,
		Example: `  tail -f /var/log/nginx/access.log | consumer parse
  consumer parse --format combined < access.log
  consumer parse --format '$remote_addr [$time_local] "$request" $status' < access.log
  kcat -C -b kafka-1:9092 -t nginxlog -e | consumer parse`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			esc, err := nginxlog.ParseEscape(escape)
			if err != nil {
				return fmt.Errorf("--escape: %w", err)
			}
			p, err := nginxlog.Compile(format, nginxlog.WithEscape(esc))
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			return parseStream(cmd.InOrStdin(), cmd.OutOrStdout(), p)
		},
	}
	cmd.Flags().StringVar(&format, "format", nginxlog.FormatName,
		`nginx log_format string, or the name of a predefined one: "`+nginxlog.FormatName+`" or "`+nginxlog.CombinedName+`"`)
	cmd.Flags().StringVar(&escape, "escape", "default", `the escape= of the log_format: "default", "json" or "none"`)
	return cmd
}

// maxLine bounds the memory one input line may take; longer lines are
// reported as errors and skipped. A variable so tests can lower it.
var maxLine = 64 << 20

// errLineTooLong marks a line longer than maxLine.
var errLineTooLong = errors.New("line too long")

// parseStream parses every line of in and writes one JSON object per line to
// out. It fails only when in or out does.
func parseStream(in io.Reader, out io.Writer, p *nginxlog.Parser) error {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriterSize(out, 64<<10)
	var (
		rec  nginxlog.Record
		long []byte // the line so far, when it outgrows r's buffer
		js   []byte
	)
	for n := 1; ; n++ {
		// Flush before the reader may block, so output of a slow stream
		// (tail -f, kcat) appears as it comes, while a file or a busy pipe
		// is still written in large chunks.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing stdout: %w", err)
			}
		}
		line, rerr := readLine(r, &long)
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, errLineTooLong) {
			// Keep what was parsed so far: it is correct, only incomplete.
			w.Flush()
			return fmt.Errorf("reading stdin: %w", rerr)
		}
		js = js[:0]
		if errors.Is(rerr, errLineTooLong) {
			js = appendError(js, fmt.Errorf("%w: more than %d bytes, skipped", rerr, maxLine), n)
		} else if err := p.ParseInput(line, &rec); err != nil {
			js = appendError(js, err, n)
		} else {
			js = rec.AppendJSON(js)
		}
		js = append(js, '\n')
		if _, err := w.Write(js); err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing stdout: %w", err)
	}
	return nil
}

// readLine returns the next line without its "\n" (or "\r\n"). A line that
// fits r's buffer is returned in place, without a copy; a longer one is
// gathered in *long. The error is io.EOF with the last line when it has no
// newline, and errLineTooLong (after skipping the rest of the line) for a
// line over maxLine.
func readLine(r *bufio.Reader, long *[]byte) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append((*long)[:0], line...)
		tooLong := false
		for err == bufio.ErrBufferFull {
			line, err = r.ReadSlice('\n')
			if !tooLong && len(buf)+len(line) > maxLine {
				tooLong, buf = true, buf[:0]
			}
			if !tooLong {
				buf = append(buf, line...)
			}
		}
		*long = buf
		if tooLong && (err == nil || err == io.EOF) {
			return nil, errLineTooLong
		}
		line = buf
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n > 1 && line[n-2] == '\r' {
			line = line[:n-2]
		}
	}
	return line, err
}

// appendError writes {"error":"...","line":N}.
func appendError(dst []byte, err error, n int) []byte {
	dst = append(dst, `{"error":`...)
	dst = nginxlog.AppendJSONString(dst, []byte(err.Error()))
	dst = append(dst, `,"line":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}
