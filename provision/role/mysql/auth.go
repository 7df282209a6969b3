package mysql

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"
)

// Plugins whose stored hashes PasswordMatches can check.
const (
	nativePlugin = "mysql_native_password" // MariaDB's default
	sha2Plugin   = "caching_sha2_password" // MySQL 8's default
)

// PasswordMatches reports whether an account's stored authentication
// string (as mysql.user holds it for plugin) is the hash of password. It
// lets the role find an account already as wanted without logging in as
// it: the account may only log in from the consumer and dashboard hosts,
// not from the database host where the check runs.
func PasswordMatches(plugin, stored, password string) bool {
	switch plugin {
	case nativePlugin:
		want := nativeHash(password)
		return subtle.ConstantTimeCompare([]byte(stored), []byte(want)) == 1
	case sha2Plugin:
		rounds, salt, digest, ok := parseSHA2(stored)
		if !ok {
			return false
		}
		return subtle.ConstantTimeCompare([]byte(sha256Crypt(password, salt, rounds)), []byte(digest)) == 1
	}
	return false
}

// nativeHash is mysql_native_password's stored form: "*" and the upper-case
// hex of SHA1(SHA1(password)).
func nativeHash(password string) string {
	first := sha1.Sum([]byte(password))
	second := sha1.Sum(first[:])
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}

// parseSHA2 splits caching_sha2_password's stored form,
// "$A$" + rounds/1000 as three hex digits + "$" + a 20-byte salt + the
// 43-character digest.
func parseSHA2(s string) (rounds int, salt, digest string, ok bool) {
	const saltLen, digestLen = 20, 43
	if len(s) != 3+3+1+saltLen+digestLen || !strings.HasPrefix(s, "$A$") || s[6] != '$' {
		return 0, "", "", false
	}
	n, err := strconv.ParseUint(s[3:6], 16, 16)
	if err != nil || n == 0 {
		return 0, "", "", false
	}
	return int(n) * 1000, s[7 : 7+saltLen], s[7+saltLen:], true
}

// sha256Crypt is the SHA-256 variant of crypt(3) by Ulrich Drepper, the
// digest caching_sha2_password stores, with the salt taken whole (MySQL's
// salts are 20 bytes, longer than crypt's usual 16) and returned without
// any "$5$" prefix: the 43 characters of the digest.
func sha256Crypt(password, salt string, rounds int) string {
	p, s := []byte(password), []byte(salt)

	b := sha256.New()
	b.Write(p)
	b.Write(s)
	b.Write(p)
	sumB := b.Sum(nil)

	a := sha256.New()
	a.Write(p)
	a.Write(s)
	i := len(p)
	for ; i > 32; i -= 32 {
		a.Write(sumB)
	}
	a.Write(sumB[:i])
	for i = len(p); i > 0; i >>= 1 {
		if i&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(p)
		}
	}
	sumA := a.Sum(nil)

	dp := sha256.New()
	for range len(p) {
		dp.Write(p)
	}
	pSeq := repeat(dp.Sum(nil), len(p))

	ds := sha256.New()
	for range 16 + int(sumA[0]) {
		ds.Write(s)
	}
	sSeq := repeat(ds.Sum(nil), len(s))

	c := sumA
	for r := range rounds {
		h := sha256.New()
		if r&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if r%3 != 0 {
			h.Write(sSeq)
		}
		if r%7 != 0 {
			h.Write(pSeq)
		}
		if r&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(nil)
	}

	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out strings.Builder
	put := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(alphabet[w&0x3f])
			w >>= 6
		}
	}
	order := [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}}
	for _, o := range order {
		put(c[o[0]], c[o[1]], c[o[2]], 4)
	}
	put(0, c[31], c[30], 3)
	return out.String()
}

// repeat is sum repeated to n bytes.
func repeat(sum []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, sum[:min(len(sum), n-len(out))]...)
	}
	return out
}
