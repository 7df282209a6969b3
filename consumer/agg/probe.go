package agg

import "bytes"

// ProbePrefix is the reserved URI prefix of probe requests: `verify` sends
// GET ProbePrefix+id through the whole path and then looks the id up in the
// probes table to prove the request arrived and to time it.
const ProbePrefix = "/__trafficlab/probe/"

// MaxProbeID bounds the length of a probe id, so a stray request cannot
// create rows with huge keys.
const MaxProbeID = 64

// ProbeID returns the probe id of a request URI: the path segment after
// ProbePrefix, up to the next "/", "?" or "#". ok is false when the URI is not
// under the prefix or the id is empty, too long, or holds characters other
// than letters, digits, "-", "_", "." and "~" (such a request is ordinary
// traffic).
func ProbeID(uri []byte) (id []byte, ok bool) {
	if !bytes.HasPrefix(uri, []byte(ProbePrefix)) {
		return nil, false
	}
	rest := uri[len(ProbePrefix):]
	n := 0
	for n < len(rest) && rest[n] != '/' && rest[n] != '?' && rest[n] != '#' {
		c := rest[n]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return nil, false
		}
		n++
	}
	if n == 0 || n > MaxProbeID {
		return nil, false
	}
	return rest[:n], true
}
