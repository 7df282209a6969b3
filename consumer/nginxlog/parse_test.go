package nginxlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each case parses one line and compares the record, as Record.AppendJSON
// writes it, with want. JSON shows every rule at once: keys, types, nulls,
// lists, decoded escapes and time offsets.
var parseTests = []struct {
	name   string
	format string
	escape Escape
	line   string
	want   string
}{
	// The trafficlab format.
	{
		name:   "trafficlab GET",
		format: Format,
		line:   `203.0.113.7 10.0.0.11 [25/Nov/2026:08:01:02 +0800] "GET /index.html?a=1&b=2 HTTP/1.1" 200 612 850 431 0.004 "https://www.example.com/" "Mozilla/5.0 (X11; Linux x86_64)" "www.example.com"`,
		want:   `{"remote_addr":"203.0.113.7","realip_remote_addr":"10.0.0.11","time_local":"2026-11-25T08:01:02+08:00","request":"GET /index.html?a=1&b=2 HTTP/1.1","request_method":"GET","request_uri":"/index.html?a=1&b=2","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":612,"bytes_sent":850,"request_length":431,"request_time":0.004,"http_referer":"https://www.example.com/","http_user_agent":"Mozilla/5.0 (X11; Linux x86_64)","host":"www.example.com"}`,
	},
	{
		name:   "IPv6 client and load balancer",
		format: Format,
		line:   `2001:db8::1 fd00::a:5 [01/Jan/2026:00:00:00 +0000] "HEAD / HTTP/2.0" 304 0 180 77 0.000 "-" "curl/8.5.0" "api.example.com"`,
		want:   `{"remote_addr":"2001:db8::1","realip_remote_addr":"fd00::a:5","time_local":"2026-01-01T00:00:00+00:00","request":"HEAD / HTTP/2.0","request_method":"HEAD","request_uri":"/","server_protocol":"HTTP/2.0","status":304,"body_bytes_sent":0,"bytes_sent":180,"request_length":77,"request_time":0.000,"http_referer":null,"http_user_agent":"curl/8.5.0","host":"api.example.com"}`,
	},
	{
		name:   "IPv4-mapped IPv6 and negative offset",
		format: Format,
		line:   `::ffff:192.0.2.1 10.0.0.10 [29/Feb/2028:23:59:59 -0930] "POST /api/v1/orders HTTP/1.1" 201 17 300 2048 12.345 "-" "-" "shop.example.com"`,
		want:   `{"remote_addr":"::ffff:192.0.2.1","realip_remote_addr":"10.0.0.10","time_local":"2028-02-29T23:59:59-09:30","request":"POST /api/v1/orders HTTP/1.1","request_method":"POST","request_uri":"/api/v1/orders","server_protocol":"HTTP/1.1","status":201,"body_bytes_sent":17,"bytes_sent":300,"request_length":2048,"request_time":12.345,"http_referer":null,"http_user_agent":null,"host":"shop.example.com"}`,
	},
	{
		name:   "escaped quote and backslash",
		format: Format,
		line:   `192.0.2.9 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET /a\x5Cb?q=\x22x\x22 HTTP/1.1" 200 1 2 3 0.010 "-" "Bot \x22Quoted\x22 \x5C/1.0" "www.example.com"`,
		want:   `{"remote_addr":"192.0.2.9","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET /a\\b?q=\"x\" HTTP/1.1","request_method":"GET","request_uri":"/a\\b?q=\"x\"","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":1,"bytes_sent":2,"request_length":3,"request_time":0.010,"http_referer":null,"http_user_agent":"Bot \"Quoted\" \\/1.0","host":"www.example.com"}`,
	},
	{
		name:   "non-printable and UTF-8 bytes, lower-case hex",
		format: Format,
		line:   `192.0.2.9 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET /caf\xC3\xA9\x09x\x7f HTTP/1.1" 404 0 0 0 0.001 "http://r\xc3\xa9f/" "UA\x00\x1B[31m" "www.example.com"`,
		want:   `{"remote_addr":"192.0.2.9","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET /café\tx` + "\x7f" + ` HTTP/1.1","request_method":"GET","request_uri":"/café\tx` + "\x7f" + `","server_protocol":"HTTP/1.1","status":404,"body_bytes_sent":0,"bytes_sent":0,"request_length":0,"request_time":0.001,"http_referer":"http://réf/","http_user_agent":"UA\u0000\u001b[31m","host":"www.example.com"}`,
	},
	{
		name:   "backslash that is not an escape is kept",
		format: Format,
		line:   `192.0.2.9 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET /a\xZZ\x4 HTTP/1.1" 200 0 0 0 0.001 "-" "-" "h"`,
		want:   `{"remote_addr":"192.0.2.9","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET /a\\xZZ\\x4 HTTP/1.1","request_method":"GET","request_uri":"/a\\xZZ\\x4","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":0,"bytes_sent":0,"request_length":0,"request_time":0.001,"http_referer":null,"http_user_agent":null,"host":"h"}`,
	},
	{
		name:   "brackets and quotes-looking text inside fields",
		format: Format,
		line:   `192.0.2.9 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET /list?ids[]=1&ids[]=2&x=] [y HTTP/1.1" 200 5 6 7 0.002 "https://e.com/?a=] \x22 [" "Mozilla/5.0 [en] (\x22quoted\x22)" "www.example.com"`,
		want:   `{"remote_addr":"192.0.2.9","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET /list?ids[]=1&ids[]=2&x=] [y HTTP/1.1","request_method":"GET","request_uri":"/list?ids[]=1&ids[]=2&x=] [y","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":5,"bytes_sent":6,"request_length":7,"request_time":0.002,"http_referer":"https://e.com/?a=] \" [","http_user_agent":"Mozilla/5.0 [en] (\"quoted\")","host":"www.example.com"}`,
	},
	{
		name:   "empty request line",
		format: Format,
		line:   `198.51.100.4 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "" 400 0 157 0 0.000 "-" "-" "_"`,
		want:   `{"remote_addr":"198.51.100.4","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"","request_method":null,"request_uri":null,"server_protocol":null,"status":400,"body_bytes_sent":0,"bytes_sent":157,"request_length":0,"request_time":0.000,"http_referer":null,"http_user_agent":null,"host":"_"}`,
	},
	{
		name:   "TLS handshake on the HTTP port",
		format: Format,
		line:   `198.51.100.4 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 150 300 0 0.012 "-" "-" "_"`,
		want:   `{"remote_addr":"198.51.100.4","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\ufffd\u0003\u0003","request_method":null,"request_uri":null,"server_protocol":null,"status":400,"body_bytes_sent":150,"bytes_sent":300,"request_length":0,"request_time":0.012,"http_referer":null,"http_user_agent":null,"host":"_"}`,
	},
	{
		name:   "lone method",
		format: Format,
		line:   `198.51.100.4 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET" 400 0 157 3 0.000 "-" "-" "_"`,
		want:   `{"remote_addr":"198.51.100.4","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET","request_method":null,"request_uri":null,"server_protocol":null,"status":400,"body_bytes_sent":0,"bytes_sent":157,"request_length":3,"request_time":0.000,"http_referer":null,"http_user_agent":null,"host":"_"}`,
	},
	{
		name:   "lower-case method is not HTTP",
		format: Format,
		line:   `198.51.100.4 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "get / HTTP/1.1" 400 0 157 16 0.000 "-" "-" "_"`,
		want:   `{"remote_addr":"198.51.100.4","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"get / HTTP/1.1","request_method":null,"request_uri":null,"server_protocol":null,"status":400,"body_bytes_sent":0,"bytes_sent":157,"request_length":16,"request_time":0.000,"http_referer":null,"http_user_agent":null,"host":"_"}`,
	},
	{
		name:   "HTTP/0.9 request has no protocol",
		format: Format,
		line:   `198.51.100.4 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET /old" 200 10 10 8 0.000 "-" "-" "_"`,
		want:   `{"remote_addr":"198.51.100.4","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET /old","request_method":"GET","request_uri":"/old","server_protocol":null,"status":200,"body_bytes_sent":10,"bytes_sent":10,"request_length":8,"request_time":0.000,"http_referer":null,"http_user_agent":null,"host":"_"}`,
	},
	{
		name:   "spaces in the URI",
		format: Format,
		line:   `198.51.100.4 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET /a b HTTP/1.0 c HTTP/1.1" 200 1 1 1 0.000 "-" "-" "_"`,
		want:   `{"remote_addr":"198.51.100.4","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET /a b HTTP/1.0 c HTTP/1.1","request_method":"GET","request_uri":"/a b HTTP/1.0 c","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":1,"bytes_sent":1,"request_length":1,"request_time":0.000,"http_referer":null,"http_user_agent":null,"host":"_"}`,
	},
	{
		name:   "HTTP/2 preface and CONNECT",
		format: `"$request" $status`,
		line:   `"PRI * HTTP/2.0" 400`,
		want:   `{"request":"PRI * HTTP/2.0","request_method":"PRI","request_uri":"*","server_protocol":"HTTP/2.0","status":400}`,
	},
	{
		name:   "every value absent",
		format: Format,
		line:   `- - [-] "-" - - - - - "-" "-" "-"`,
		want:   `{"remote_addr":null,"realip_remote_addr":null,"time_local":null,"request":null,"request_method":null,"request_uri":null,"server_protocol":null,"status":null,"body_bytes_sent":null,"bytes_sent":null,"request_length":null,"request_time":null,"http_referer":null,"http_user_agent":null,"host":null}`,
	},
	{
		name:   "empty strings are not null",
		format: Format,
		line:   `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 0 0 0 0.000 "" "" ""`,
		want:   `{"remote_addr":"192.0.2.1","realip_remote_addr":"10.0.0.10","time_local":"2026-11-25T08:01:02+08:00","request":"GET / HTTP/1.1","request_method":"GET","request_uri":"/","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":0,"bytes_sent":0,"request_length":0,"request_time":0.000,"http_referer":"","http_user_agent":"","host":""}`,
	},

	// nginx's combined format.
	{
		name:   "combined",
		format: CombinedName,
		line:   `192.0.2.44 - - [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
		want:   `{"remote_addr":"192.0.2.44","remote_user":null,"time_local":"2026-10-10T13:55:36-07:00","request":"GET /apache_pb.gif HTTP/1.0","request_method":"GET","request_uri":"/apache_pb.gif","server_protocol":"HTTP/1.0","status":200,"body_bytes_sent":2326,"http_referer":"http://www.example.com/start.html","http_user_agent":"Mozilla/4.08 [en] (Win98; I ;Nav)"}`,
	},
	{
		name:   "combined with a user",
		format: CombinedName,
		line:   `2001:db8:85a3::8a2e:370:7334 - alice [01/Mar/2026:00:00:01 +0100] "DELETE /cart/items/3 HTTP/1.1" 204 0 "-" "okhttp/4.12.0"`,
		want:   `{"remote_addr":"2001:db8:85a3::8a2e:370:7334","remote_user":"alice","time_local":"2026-03-01T00:00:01+01:00","request":"DELETE /cart/items/3 HTTP/1.1","request_method":"DELETE","request_uri":"/cart/items/3","server_protocol":"HTTP/1.1","status":204,"body_bytes_sent":0,"http_referer":null,"http_user_agent":"okhttp/4.12.0"}`,
	},
	{
		name:   "combined with a user whose name holds the delimiter",
		format: CombinedName,
		line:   `192.0.2.44 - bob [x] smith [10/Oct/2026:13:55:36 -0700] "GET / HTTP/1.1" 401 0 "-" "-"`,
		want:   `{"remote_addr":"192.0.2.44","remote_user":"bob [x] smith","time_local":"2026-10-10T13:55:36-07:00","request":"GET / HTTP/1.1","request_method":"GET","request_uri":"/","server_protocol":"HTTP/1.1","status":401,"body_bytes_sent":0,"http_referer":null,"http_user_agent":null}`,
	},
	{
		name:   "combined TLS probe",
		format: CombinedName,
		line:   `198.51.100.4 - - [25/Nov/2026:08:01:02 +0800] "\x16\x03\x01\x00\xF1\x01\x00\x00\xED\x03\x03" 400 157 "-" "-"`,
		want:   `{"remote_addr":"198.51.100.4","remote_user":null,"time_local":"2026-11-25T08:01:02+08:00","request":"\u0016\u0003\u0001\u0000\ufffd\u0001\u0000\u0000\ufffd\u0003\u0003","request_method":null,"request_uri":null,"server_protocol":null,"status":400,"body_bytes_sent":157,"http_referer":null,"http_user_agent":null}`,
	},

	// $upstream_* lists.
	{
		name:   "upstream lists quoted",
		format: `$remote_addr "$request" $status ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time" uct="$upstream_connect_time" uht="$upstream_header_time" ul="$upstream_response_length"`,
		line:   `192.0.2.1 "GET / HTTP/1.1" 200 ua="10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80" us="502, 504 : 200" urt="0.001, 0.500 : 0.010" uct="0.000, - : 0.001" uht="-, - : 0.009" ul="0, 0 : 612"`,
		want:   `{"remote_addr":"192.0.2.1","request":"GET / HTTP/1.1","request_method":"GET","request_uri":"/","server_protocol":"HTTP/1.1","status":200,"upstream_addr":["10.0.0.1:80","10.0.0.2:80","10.0.0.3:80"],"upstream_status":[502,504,200],"upstream_response_time":[0.001,0.500,0.010],"upstream_connect_time":[0.000,null,0.001],"upstream_header_time":[null,null,0.009],"upstream_response_length":[0,0,612]}`,
	},
	{
		name:   "upstream lists unquoted, separated by spaces",
		format: `$remote_addr $upstream_addr $upstream_status $upstream_response_time $status`,
		line:   `192.0.2.1 10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80 502, 504 : 200 0.001, 0.500 : 0.010 200`,
		want:   `{"remote_addr":"192.0.2.1","upstream_addr":["10.0.0.1:80","10.0.0.2:80","10.0.0.3:80"],"upstream_status":[502,504,200],"upstream_response_time":[0.001,0.500,0.010],"status":200}`,
	},
	{
		name:   "single upstream and none",
		format: `$upstream_addr|$upstream_status|$upstream_bytes_received|$upstream_cache_status|$upstream_http_cache_control|$status`,
		line:   `unix:/run/app.sock|200|1234|HIT|no-cache, no-store|200`,
		want:   `{"upstream_addr":["unix:/run/app.sock"],"upstream_status":[200],"upstream_bytes_received":[1234],"upstream_cache_status":"HIT","upstream_http_cache_control":"no-cache, no-store","status":200}`,
	},
	{
		name:   "no upstream at all",
		format: `$upstream_addr|$upstream_status|$upstream_response_time|$status`,
		line:   `-|-|-|404`,
		want:   `{"upstream_addr":null,"upstream_status":null,"upstream_response_time":null,"status":404}`,
	},
	{
		name:   "IPv6 upstreams",
		format: `"$upstream_addr" $status`,
		line:   `"[2001:db8::10]:8080, [2001:db8::11]:8080" 200`,
		want:   `{"upstream_addr":["[2001:db8::10]:8080","[2001:db8::11]:8080"],"status":200}`,
	},

	// Types of other variables.
	{
		name:   "time_iso8601, msec, connection counters, ports",
		format: `$time_iso8601 $msec $connection $connection_requests $pid $remote_port $server_port $gzip_ratio $request_id`,
		line:   `2026-11-25T08:01:02+08:00 1795564862.123 12345 3 4711 54321 443 2.81 2a1f7c9e0b3d4e5f6a7b8c9d0e1f2a3b`,
		want:   `{"time_iso8601":"2026-11-25T08:01:02+08:00","msec":1795564862.123,"connection":12345,"connection_requests":3,"pid":4711,"remote_port":54321,"server_port":443,"gzip_ratio":2.81,"request_id":"2a1f7c9e0b3d4e5f6a7b8c9d0e1f2a3b"}`,
	},
	{
		name:   "time_iso8601 in UTC, Z accepted",
		format: `$time_iso8601|$time_iso8601`,
		line:   `2026-11-25T00:01:02+00:00|2026-11-25T00:01:02Z`,
		want:   `{"time_iso8601":"2026-11-25T00:01:02+00:00"}`,
	},
	{
		name:   "port empty on a unix socket",
		format: `$remote_addr port=$remote_port $status`,
		line:   `unix: port= 200`,
		want:   `{"remote_addr":"unix:","remote_port":null,"status":200}`,
	},
	{
		name:   "bytes variables are integers, headers are strings",
		format: `$bytes_received $upstream_bytes_sent $http_x_bytes "$sent_http_content_length" $content_length`,
		line:   `77 10, 20 lots "512" 3`,
		want:   `{"bytes_received":77,"upstream_bytes_sent":[10,20],"http_x_bytes":"lots","sent_http_content_length":"512","content_length":"3"}`,
	},

	// Custom formats.
	{
		name:   "braced variables and unusual literals",
		format: `<<${remote_addr}>>::${status}ms=${request_time};→${host}¦`,
		line:   `<<192.0.2.1>>::503ms=1.500;→www.example.com¦`,
		want:   `{"remote_addr":"192.0.2.1","status":503,"request_time":1.500,"host":"www.example.com"}`,
	},
	{
		name:   "braces let a name touch literal text",
		format: `${status}xx ${body_bytes_sent}B`,
		line:   `200xx 1024B`,
		want:   `{"status":200,"body_bytes_sent":1024}`,
	},
	{
		name:   "variable names are case-insensitive",
		format: `$Remote_Addr $STATUS`,
		line:   `192.0.2.1 200`,
		want:   `{"remote_addr":"192.0.2.1","status":200}`,
	},
	{
		name:   "tab separated, last variable runs to the end",
		format: "$remote_addr\t$status\t$http_user_agent",
		line:   "192.0.2.1\t200\tMozilla/5.0 (X11) \"odd\" tail",
		want:   `{"remote_addr":"192.0.2.1","status":200,"http_user_agent":"Mozilla/5.0 (X11) \"odd\" tail"}`,
	},
	{
		name:   "unquoted request is found by backtracking",
		format: `$remote_addr $request $status $body_bytes_sent`,
		line:   `192.0.2.1 GET /a 200 b HTTP/1.1 404 12`,
		want:   `{"remote_addr":"192.0.2.1","request":"GET /a 200 b HTTP/1.1","request_method":"GET","request_uri":"/a 200 b","server_protocol":"HTTP/1.1","status":404,"body_bytes_sent":12}`,
	},
	{
		name:   "the format logs request_method itself",
		format: `$request_method "$request" $status`,
		line:   `GET "GET /x HTTP/1.1" 200`,
		want:   `{"request_method":"GET","request":"GET /x HTTP/1.1","request_uri":"/x","server_protocol":"HTTP/1.1","status":200}`,
	},
	{
		name:   "a variable twice: parsed twice, named once",
		format: `$status $body_bytes_sent $status`,
		line:   `200 5 200`,
		want:   `{"status":200,"body_bytes_sent":5}`,
	},
	{
		name:   "literal text only around one variable",
		format: `[[$status]]`,
		line:   `[[418]]`,
		want:   `{"status":418}`,
	},

	// Other escapings.
	{
		name:   "escape=json",
		format: `{"ip":"$remote_addr","t":"$time_iso8601","req":"$request","s":$status,"ua":"$http_user_agent","ref":"$http_referer"}`,
		escape: EscapeJSON,
		line:   `{"ip":"192.0.2.1","t":"2026-11-25T08:01:02+08:00","req":"GET /q?x=\"1\" HTTP/1.1","s":200,"ua":"Bot \"x\\\" \\\\\",\"ua\":\"y","ref":"caf\u00e9\n"}`,
		want:   `{"remote_addr":"192.0.2.1","time_iso8601":"2026-11-25T08:01:02+08:00","request":"GET /q?x=\"1\" HTTP/1.1","request_method":"GET","request_uri":"/q?x=\"1\"","server_protocol":"HTTP/1.1","status":200,"http_user_agent":"Bot \"x\\\" \\\\\",\"ua\":\"y","http_referer":"café\n"}`,
	},
	{
		name:   "escape=json quote inside a quoted value",
		format: `"$http_user_agent" $status`,
		escape: EscapeJSON,
		line:   `"a\" 5 \\" 200`,
		want:   `{"http_user_agent":"a\" 5 \\","status":200}`,
	},
	{
		name:   "escape=none keeps backslashes and quotes",
		format: `$remote_addr "$http_user_agent"`,
		escape: EscapeNone,
		line:   `192.0.2.1 "say "hi" \x22"`,
		want:   `{"remote_addr":"192.0.2.1","http_user_agent":"say \"hi\" \\x22"}`,
	},
}

func TestParse(t *testing.T) {
	for _, tc := range parseTests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.format, WithEscape(tc.escape))
			if err != nil {
				t.Fatal(err)
			}
			var rec Record
			if err := p.Parse([]byte(tc.line), &rec); err != nil {
				t.Fatalf("Parse(%q): %v", tc.line, err)
			}
			got := rec.AppendJSON(nil)
			if string(got) != tc.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tc.line, got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
			// The same line through ParseInput, as a raw line.
			var rec2 Record
			if tc.line != "" && tc.line[0] != '{' {
				if err := p.ParseInput([]byte(tc.line), &rec2); err != nil {
					t.Fatalf("ParseInput: %v", err)
				}
				if got2 := rec2.AppendJSON(nil); !bytes.Equal(got, got2) {
					t.Errorf("ParseInput differs:\n%s\n%s", got2, got)
				}
			}
		})
	}
}

// TestParseReuse parses every case into one Record, twice over, to show
// that nothing of an earlier line leaks into a later one.
func TestParseReuse(t *testing.T) {
	var rec Record
	for range 2 {
		for _, tc := range parseTests {
			p := MustCompile(tc.format, WithEscape(tc.escape))
			if err := p.Parse([]byte(tc.line), &rec); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := rec.AppendJSON(nil); string(got) != tc.want {
				t.Errorf("%s: got %s", tc.name, got)
			}
		}
	}
}

func TestParseLongURI(t *testing.T) {
	p := MustCompile(Format)
	for _, n := range []int{64 << 10, 1 << 20} {
		uri := "/" + strings.Repeat("a/b?c=[d]&", n/10)
		line := `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET ` + uri + ` HTTP/1.1" 414 0 200 ` +
			"70000 0.000 \"-\" \"-\" \"www.example.com\""
		var rec Record
		if err := p.Parse([]byte(line), &rec); err != nil {
			t.Fatalf("%d-byte URI: %v", len(uri), err)
		}
		if string(rec.URI()) != uri {
			t.Errorf("%d-byte URI: got %d bytes", len(uri), len(rec.URI()))
		}
		if st, _ := rec.Status(); st != 414 {
			t.Errorf("status %d", st)
		}
		if string(rec.Host()) != "www.example.com" {
			t.Errorf("host %q", rec.Host())
		}
	}
}

// Lines that do not match say where and which variable.
var errorTests = []struct {
	name   string
	format string
	line   string
	want   string // the error's text
	column int
	field  string
	cause  error
}{
	{"empty line", Format, ``,
		`column 1: $remote_addr: the line ends before it`, 1, "remote_addr", ErrMismatch},
	{"not a status", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 2x0 1 2 3 0.001 "-" "-" "h"`,
		`column 67: $status: want an integer, found "2x0"`, 67, "status", ErrValue},
	{"negative bytes", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 -1 2 3 0.001 "-" "-" "h"`,
		`column 71: $body_bytes_sent: want an integer, found "-1"`, 71, "body_bytes_sent", ErrValue},
	{"integer too large", `$status`, `1234567890123456789`,
		`column 1: $status: want an integer, found "1234567890123456789"`, 1, "status", ErrValue},
	{"bad request_time", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 1 2 3 .001 "-" "-" "h"`,
		`column 77: $request_time: want a decimal number, found ".001"`, 77, "request_time", ErrValue},
	{"bad month", Format, `192.0.2.1 10.0.0.10 [25/Foo/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 1 2 3 0.001 "-" "-" "h"`,
		`column 22: $time_local: want a time like 02/Jan/2006:15:04:05 -0700, found "25/Foo/2026:08:01:02 +0800"`, 22, "time_local", ErrValue},
	{"31 November", Format, `192.0.2.1 10.0.0.10 [31/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 1 2 3 0.001 "-" "-" "h"`,
		`column 22: $time_local: want a time like 02/Jan/2006:15:04:05 -0700, found "31/Nov/2026:08:01:02 +0800"`, 22, "time_local", ErrValue},
	{"time without offset", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02] "GET / HTTP/1.1" 200 1 2 3 0.001 "-" "-" "h"`,
		`column 22: $time_local: want a time like 02/Jan/2006:15:04:05 -0700, found "25/Nov/2026:08:01:02"`, 22, "time_local", ErrValue},
	{"truncated line", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 1 2 3 0.001 "-" "Mozilla`,
		`column 88: $http_user_agent: no "\" \"" after it (value starts "Mozilla")`, 88, "http_user_agent", ErrMismatch},
	{"missing closing quote", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 1 2 3 0.001 "-" "-" "h`,
		`column 92: $host: no "\"" after it (value starts "h")`, 92, "host", ErrMismatch},
	{"trailing text", Format, `192.0.2.1 10.0.0.10 [25/Nov/2026:08:01:02 +0800] "GET / HTTP/1.1" 200 1 2 3 0.001 "-" "-" "h" extra`,
		`column 94: unexpected " extra" after the end of the format`, 94, "", ErrMismatch},
	{"combined line for the trafficlab format", Format, `192.0.2.44 - - [10/Oct/2026:13:55:36 -0700] "GET / HTTP/1.0" 200 2326 "-" "-"`,
		`column 71: $bytes_sent: want an integer, found "\"-\""`, 71, "bytes_sent", ErrValue},
	{"prefix", `ip=$remote_addr`, `addr=192.0.2.1`,
		`column 1: want "ip=", found "addr=192.0.2.1"`, 1, "", ErrMismatch},
	{"bad list entry", `$upstream_status $status`, `502, x : 200 200`,
		`column 6: $upstream_status: want a list of integers, found "x"`, 6, "upstream_status", ErrValue},
	{"bad iso time", `$time_iso8601`, `2026-11-25 08:01:02`,
		`column 1: $time_iso8601: want a time like 2006-01-02T15:04:05-07:00, found "2026-11-25 08:01:02"`, 1, "time_iso8601", ErrValue},
	{"long value is cut in the message", `$status`, strings.Repeat("9", 100),
		`column 1: $status: want an integer, found "9999999999999999999999999999999999999999"...`, 1, "status", ErrValue},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorTests {
		t.Run(tc.name, func(t *testing.T) {
			p := MustCompile(tc.format)
			var rec Record
			err := p.Parse([]byte(tc.line), &rec)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded: %s", tc.line, rec.AppendJSON(nil))
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Column != tc.column || pe.Field != tc.field {
				t.Errorf("column %d field %q, want %d %q", pe.Column, pe.Field, tc.column, tc.field)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v is not %v", err, tc.cause)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	p := MustCompile(Format)
	var rec Record
	line := `2001:db8::7 10.0.0.11 [25/Nov/2026:08:01:02 +0800] "POST /api?x=caf\xC3\xA9 HTTP/1.1" 201 612 850 431 1.250 "https://r/" "UA \x22q\x22" "shop.example.com"`
	if err := p.Parse([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	if got := string(rec.ClientAddr()); got != "2001:db8::7" {
		t.Errorf("ClientAddr %q", got)
	}
	tm, ok := rec.Time()
	want := time.Date(2026, 11, 25, 8, 1, 2, 0, time.FixedZone("", 8*3600))
	if _, off := tm.Zone(); !ok || !tm.Equal(want) || off != 8*3600 {
		t.Errorf("Time %v %v", tm, ok)
	}
	if string(rec.Method()) != "POST" || string(rec.URI()) != "/api?x=café" || string(rec.Protocol()) != "HTTP/1.1" {
		t.Errorf("request parts %q %q %q", rec.Method(), rec.URI(), rec.Protocol())
	}
	if st, ok := rec.Status(); st != 201 || !ok {
		t.Errorf("Status %d", st)
	}
	for name, got := range map[string]func() (int64, bool){
		"body": rec.BodyBytesSent, "sent": rec.BytesSent, "len": rec.RequestLength} {
		n, ok := got()
		if !ok || n != map[string]int64{"body": 612, "sent": 850, "len": 431}[name] {
			t.Errorf("%s = %d %v", name, n, ok)
		}
	}
	if d, ok := rec.RequestTime(); !ok || d != 1250*time.Millisecond {
		t.Errorf("RequestTime %v", d)
	}
	if string(rec.Host()) != "shop.example.com" || string(rec.Referer()) != "https://r/" || string(rec.UserAgent()) != `UA "q"` {
		t.Errorf("Host/Referer/UserAgent %q %q %q", rec.Host(), rec.Referer(), rec.UserAgent())
	}
	if rec.Backend() != nil {
		t.Errorf("Backend of a raw line: %q", rec.Backend())
	}
	if string(rec.Line()) != line {
		t.Errorf("Line")
	}

	// Generic access.
	v, ok := rec.Get("request_time")
	if !ok || v.Kind() != KindDecimal || v.Float() != 1.25 || v.Int() != 1 || v.String() != "1.250" {
		t.Errorf("Get(request_time) = %+v", v)
	}
	if _, ok := rec.Get("upstream_addr"); ok {
		t.Error("Get of a variable the format lacks")
	}
	if v, _ := rec.Get("http_referer"); v.IsNull() || v.String() != "https://r/" {
		t.Errorf("referer %v", v)
	}
	if i := p.Index("status"); rec.Field(i).Int() != 201 || rec.Name(i) != "status" {
		t.Errorf("Field(Index(status))")
	}
	if rec.NumFields() != len(p.Fields()) {
		t.Errorf("NumFields %d, Fields %d", rec.NumFields(), len(p.Fields()))
	}

	// Absent values.
	if err := p.Parse([]byte(`- - [-] "-" - - - - - "-" "-" "-"`), &rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Time(); ok {
		t.Error("Time of -")
	}
	if _, ok := rec.Status(); ok {
		t.Error("Status of -")
	}
	if _, ok := rec.RequestTime(); ok {
		t.Error("RequestTime of -")
	}
	if rec.ClientAddr() != nil || rec.Method() != nil || rec.Host() != nil {
		t.Error("strings of -")
	}
	if v, _ := rec.Get("status"); !v.IsNull() || v.String() != "-" {
		t.Errorf("null status %+v", v)
	}
}

func TestAccessorsOtherFormats(t *testing.T) {
	// Time from $msec, URI from $uri, host from $http_host.
	p := MustCompile(`$msec $uri $http_host $status`)
	var rec Record
	if err := p.Parse([]byte(`1795564862.250 /x www.example.com 200`), &rec); err != nil {
		t.Fatal(err)
	}
	tm, ok := rec.Time()
	if !ok || !tm.Equal(time.Unix(1795564862, 250e6)) {
		t.Errorf("Time from msec: %v", tm)
	}
	if string(rec.URI()) != "/x" || string(rec.Host()) != "www.example.com" || rec.Method() != nil {
		t.Errorf("URI %q Host %q Method %q", rec.URI(), rec.Host(), rec.Method())
	}
	if _, ok := rec.BodyBytesSent(); ok {
		t.Error("BodyBytesSent of a format without it")
	}
}

func TestValues(t *testing.T) {
	p := MustCompile(`$upstream_addr|$upstream_response_time|$request_time|$msec|$status`)
	var rec Record
	if err := p.Parse([]byte(`a:1, - : b:2|0.001, 0.020 : -|0.000000000123|1795564862.123456|200`), &rec); err != nil {
		t.Fatal(err)
	}
	ua, _ := rec.Get("upstream_addr")
	if !ua.IsList() || ua.Len() != 3 || string(ua.Index(0).Bytes()) != "a:1" || !ua.Index(1).IsNull() || ua.String() != "a:1, -, b:2" {
		t.Errorf("upstream_addr %+v %q", ua, ua.String())
	}
	urt, _ := rec.Get("upstream_response_time")
	if urt.Kind() != KindDecimal || urt.Index(1).Duration() != 20*time.Millisecond || !urt.Index(2).IsNull() {
		t.Errorf("upstream_response_time %v", urt)
	}
	if rt, _ := rec.Get("request_time"); rt.Duration() != 0 || rt.Float() != 0.000000000123 {
		t.Errorf("sub-nanosecond request_time %v %v", rt.Duration(), rt.Float())
	}
	if ms, _ := rec.Get("msec"); !ms.Time().Equal(time.Unix(1795564862, 123456000)) {
		t.Errorf("msec %v", ms.Time())
	}
	if st, _ := rec.Get("status"); st.Duration() != 200*time.Second || st.Float() != 200 || st.Kind().String() != "int" {
		t.Errorf("status as numbers")
	}
}

func TestFields(t *testing.T) {
	p := MustCompile(CombinedName)
	var names []string
	for _, f := range p.Fields() {
		s := f.Name + ":" + f.Kind.String()
		if f.Derived {
			s += "*"
		}
		names = append(names, s)
	}
	want := "remote_addr:string remote_user:string time_local:time request:string request_method:string* request_uri:string* server_protocol:string* status:int body_bytes_sent:int http_referer:string http_user_agent:string"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("Fields\n got %s\nwant %s", got, want)
	}
	if p.Format() != CombinedFormat || p.Escape() != EscapeDefault {
		t.Errorf("Format %q Escape %v", p.Format(), p.Escape())
	}
	if f := MustCompile(`$upstream_status`).Fields()[0]; !f.List || f.Kind != KindInt {
		t.Errorf("upstream_status field %+v", f)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   string
		offset int
	}{
		{`$remote_addr$status`, `log_format column 13: $status follows $remote_addr with no literal text between them: nothing in the line would show where one ends`, 12},
		{`[$time_local] ${request}${status}`, `log_format column 25: $status follows $request with no literal text between them: nothing in the line would show where one ends`, 24},
		{`$remote_addr $ $status`, `log_format column 14: "$" is not followed by a variable name`, 13},
		{`costs 5$`, `log_format column 8: "$" is not followed by a variable name`, 7},
		{`${status`, `log_format column 1: "${status" has no closing "}"`, 0},
		{`${}`, `log_format column 1: "$" is not followed by a variable name`, 0},
		{``, `log_format column 1: empty format`, 0},
	} {
		_, err := Compile(tc.format)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("Compile(%q) = %v, want a *FormatError", tc.format, err)
			continue
		}
		if err.Error() != tc.want || fe.Offset != tc.offset {
			t.Errorf("Compile(%q)\n got %v (offset %d)\nwant %s (offset %d)", tc.format, err, fe.Offset, tc.want, tc.offset)
		}
	}
	if _, err := Compile(Format, WithEscape(Escape(9))); err == nil {
		t.Error("unknown escape accepted")
	}
}

func TestLiteralOnlyFormat(t *testing.T) {
	p := MustCompile(`heartbeat`)
	var rec Record
	if err := p.Parse([]byte(`heartbeat`), &rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.AppendJSON(nil); string(got) != `{}` {
		t.Errorf("got %s", got)
	}
	if err := p.Parse([]byte(`heartbeat!`), &rec); err == nil {
		t.Error("trailing text accepted")
	}
}

func TestParseEscape(t *testing.T) {
	for _, e := range []Escape{EscapeDefault, EscapeJSON, EscapeNone} {
		if got, err := ParseEscape(e.String()); err != nil || got != e {
			t.Errorf("ParseEscape(%q) = %v, %v", e, got, err)
		}
	}
	if _, err := ParseEscape("html"); err == nil {
		t.Error("ParseEscape(html) succeeded")
	}
}

// TestBacktrackBudget feeds a line that makes the ambiguous parse try many
// ends: it must fail quickly, not hang.
func TestBacktrackBudget(t *testing.T) {
	p := MustCompile(`$http_a $http_b $http_c $status`)
	line := []byte(strings.Repeat("x ", 5000) + "notanumber")
	var rec Record
	start := time.Now()
	err := p.Parse(line, &rec)
	if err == nil {
		t.Fatal("parsed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	// A line that needs a little backtracking still parses.
	if err := p.Parse([]byte("a 1 b 2 c 3 200"), &rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.AppendJSON(nil); string(got) != `{"http_a":"a","http_b":"1","http_c":"b 2 c 3","status":200}` {
		t.Errorf("got %s", got)
	}
}

func TestParseAllocs(t *testing.T) {
	p := MustCompile(Format)
	var rec Record
	lines := [][]byte{
		[]byte(`203.0.113.7 10.0.0.11 [25/Nov/2026:08:01:02 +0800] "GET /index.html HTTP/1.1" 200 612 850 431 0.004 "-" "Mozilla/5.0" "www.example.com"`),
		[]byte(`203.0.113.7 10.0.0.11 [25/Nov/2026:08:01:02 +0800] "GET /caf\xC3\xA9 HTTP/1.1" 200 612 850 431 0.004 "-" "UA \x22q\x22" "www.example.com"`),
	}
	for _, line := range lines {
		if n := testing.AllocsPerRun(100, func() {
			if err := p.Parse(line, &rec); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", line, n)
		}
	}
	ups := MustCompile(`$upstream_addr $upstream_status $status`)
	upsLine := []byte(`a:1, b:2 : c:3 502, 504 : 200 200`)
	if n := testing.AllocsPerRun(100, func() {
		if err := ups.Parse(upsLine, &rec); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("upstream lists allocate %v times", n)
	}
}

func TestConcurrentParsers(t *testing.T) {
	p := MustCompile(Format)
	corpus := makeCorpus(500)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var rec Record
			c := newChecker(p)
			for i := range corpus {
				s := &corpus[(i+g*100)%len(corpus)]
				if err := p.Parse(s.line, &rec); err != nil {
					t.Errorf("%q: %v", s.line, err)
					return
				}
				if d := c.check(&rec, s, false); d != "" {
					t.Errorf("%q: wrong %s", s.line, d)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCorpusCombined(t *testing.T) {
	p := MustCompile(CombinedName)
	c := newChecker(p)
	var rec Record
	for _, s := range makeCorpus(500) {
		if err := p.Parse(s.combLog, &rec); err != nil {
			t.Fatalf("%q: %v", s.combLog, err)
		}
		if d := c.check(&rec, &s, true); d != "" {
			t.Fatalf("%q: wrong %s", s.combLog, d)
		}
	}
}
