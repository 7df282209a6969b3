package agg

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// ProbePrefix is the reserved URI prefix of probe requests: `verify` sends
// GET ProbePrefix+SignProbe(key, id) through the whole path and then looks
// the id up in the probes table to prove the request arrived and to time it.
const ProbePrefix = "/__trafficlab/probe/"

// MaxProbeID bounds the length of a probe id, so a stray request cannot
// create rows with huge keys.
const MaxProbeID = 64

// probeMACLen is the hex length of a probe's signature: 128 bits of
// HMAC-SHA256, beyond guessing.
const probeMACLen = 32

// ProbeID returns the probe segment of a request URI: the path segment
// after ProbePrefix, up to the next "/", "?" or "#". ok is false when the
// URI is not under the prefix or the segment is empty, too long, or holds
// characters other than letters, digits, "-", "_", "." and "~". It does not
// check a signature: see VerifyProbe.
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
		if n > MaxProbeID+1+probeMACLen {
			return nil, false
		}
	}
	if n == 0 {
		return nil, false
	}
	return rest[:n], true
}

// SignProbe returns the probe segment for id, "<id>.<hmac>": only requests
// carrying a signature made with the cluster's probe key are recorded as
// probes, so a visitor cannot create rows. id is at most MaxProbeID of the
// characters ProbeID accepts.
func SignProbe(key []byte, id string) string {
	return id + "." + hex.EncodeToString(probeMAC(key, []byte(id)))
}

func probeMAC(key, id []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("trafficlab probe\x00"))
	m.Write(id)
	return m.Sum(nil)[:probeMACLen/2]
}

// VerifyProbe returns the id of a signed probe URI; ok is false for any
// other URI (not a probe, unsigned, wrongly signed, or no key at all),
// which is then ordinary traffic.
func VerifyProbe(key, uri []byte) (id []byte, ok bool) {
	if len(key) == 0 {
		return nil, false
	}
	seg, ok := ProbeID(uri)
	if !ok {
		return nil, false
	}
	i := bytes.LastIndexByte(seg, '.')
	if i <= 0 || i > MaxProbeID || len(seg)-i-1 != probeMACLen {
		return nil, false
	}
	id, sig := seg[:i], seg[i+1:]
	want := make([]byte, probeMACLen)
	hex.Encode(want, probeMAC(key, id))
	// Constant time: the comparison must not tell how much of a guess was
	// right.
	if !hmac.Equal(bytes.ToLower(sig), want) {
		return nil, false
	}
	return id, true
}
