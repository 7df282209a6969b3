package mysql

import (
	"encoding/hex"
	"testing"
)

// sha256Crypt against crypt(3)'s SHA-256 ($5$, 5000 rounds), as `openssl
// passwd -5 -salt SALT PASSWORD` prints it, including a password longer
// than one digest.
func TestSHA256CryptMatchesCrypt(t *testing.T) {
	for _, tt := range []struct{ password, salt, want string }{
		{"Hello world!", "saltstring", "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"a much longer password than thirty-two bytes, really", "abcdefghijklmnop", "IuzkZNKbDgC8UDpGJk7jjkEPPNxrZrm0w.Wca.6T8oB"},
	} {
		if got := sha256Crypt(tt.password, tt.salt, 5000); got != tt.want {
			t.Errorf("sha256Crypt(%q, %q) = %s, want %s", tt.password, tt.salt, got, tt.want)
		}
	}
}

// A caching_sha2_password account of MySQL 8 (password "hashcat", the
// example hash of hashcat's mode 7401, there written in hex): a 20-byte
// salt of arbitrary bytes.
func TestPasswordMatchesMySQL8(t *testing.T) {
	salt, _ := hex.DecodeString("F9CC98CE08892924F50A213B6BC571A2C11778C5")
	digest, _ := hex.DecodeString("625479393559393965414D45316477456B484F41316E64484742577A2E3162785353526B7554584647562F")
	stored := "$A$005$" + string(salt) + string(digest)
	if !PasswordMatches(sha2Plugin, stored, "hashcat") {
		t.Error("the right password does not match")
	}
	if PasswordMatches(sha2Plugin, stored, "hashcaT") || PasswordMatches(sha2Plugin, stored[:len(stored)-1], "hashcat") {
		t.Error("a wrong password or a cut hash matches")
	}
}

func TestPasswordMatchesMariaDB(t *testing.T) {
	// SELECT PASSWORD('secret') in MariaDB.
	const stored = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
	if !PasswordMatches(nativePlugin, stored, "secret") || PasswordMatches(nativePlugin, stored, "Secret") {
		t.Error("mysql_native_password hash not checked right")
	}
	if PasswordMatches("unix_socket", "", "") || PasswordMatches("ed25519", stored, "secret") {
		t.Error("a plugin without a password hash matched")
	}
}
