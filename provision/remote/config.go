// Package remote runs commands and transfers files on inventory hosts over
// SSH: one connection per host shared by every caller, sudo for non-root
// users, jump hosts, known_hosts checking, retries while machines boot, and a
// per-host log of every command.
package remote

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HostKeyPolicy says what to do with a host whose key is not in known_hosts.
type HostKeyPolicy int

const (
	// AcceptNew trusts a host on first use and records its key; a changed
	// key is still refused.
	AcceptNew HostKeyPolicy = iota
	// Strict refuses hosts that are not already in known_hosts.
	Strict
)

func (p HostKeyPolicy) String() string {
	switch p {
	case AcceptNew:
		return "accept-new"
	case Strict:
		return "strict"
	}
	return fmt.Sprintf("HostKeyPolicy(%d)", int(p))
}

// Config describes how to reach one host.
type Config struct {
	Name           string        // inventory host name: used in every error and as the log file name
	Address        string        // IP or DNS name
	Port           int           // default 22
	User           string        // default "root"
	KeyFiles       []string      // unencrypted private key files ("~" expanded)
	UseAgent       bool          // also offer the keys of the ssh-agent at $SSH_AUTH_SOCK, if set
	SudoPassword   string        // for non-root users; fed to sudo on stdin, never on argv, never logged; empty = passwordless sudo
	KnownHosts     string        // known_hosts path ("~" expanded), default ~/.ssh/known_hosts; created under AcceptNew
	HostKeyPolicy  HostKeyPolicy // default AcceptNew
	Bastion        *Config       // jump host this host is reached through; bastions may have bastions
	ConnectTimeout time.Duration // one dial and handshake attempt, default 10s
	RetryFor       time.Duration // keep retrying a failed connect this long (booting machines); 0 = one attempt
	CommandTimeout time.Duration // default timeout of each command, 0 = none
	LogDir         string        // if set, every command is appended to LogDir/<Name>.log
}

const (
	defaultPort           = 22
	defaultUser           = "root"
	defaultConnectTimeout = 10 * time.Second
	defaultKnownHosts     = "~/.ssh/known_hosts"
)

// withDefaults fills in defaults and expands "~" so the rest of the package
// never has to.
func (c Config) withDefaults() (Config, error) {
	if c.Address == "" {
		return c, fmt.Errorf("%s: no address", c.Name)
	}
	if c.Name == "" {
		c.Name = c.Address
	}
	if c.Port == 0 {
		c.Port = defaultPort
	}
	if c.User == "" {
		c.User = defaultUser
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.KnownHosts == "" {
		c.KnownHosts = defaultKnownHosts
	}
	var err error
	if c.KnownHosts, err = expandHome(c.KnownHosts); err != nil {
		return c, fmt.Errorf("%s: %w", c.Name, err)
	}
	keys := make([]string, len(c.KeyFiles))
	for i, k := range c.KeyFiles {
		if keys[i], err = expandHome(k); err != nil {
			return c, fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	c.KeyFiles = keys
	return c, nil
}

// addr is host:port as dialled and as recorded in known_hosts.
func (c Config) addr() string {
	return joinHostPort(c.Address, c.Port)
}

func (c Config) isRoot() bool { return c.User == "root" }

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}
