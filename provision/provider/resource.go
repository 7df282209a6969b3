// Package provider is trafficlab's Pulumi resource provider, served in the
// provision process itself: every role on every host is one resource whose
// inputs say what the host should look like (rendered files by hash, the
// steps that make it so by identity, the settings and secrets they use),
// so that Pulumi's diff shows which files, steps and settings would change.
// It knows no role: roles are names, settings and values are opaque. The work on hosts is not done here but
// by an Executor the engine supplies; this package only speaks Pulumi's
// provider protocol and decides what changed.
package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Package is the Pulumi package name of the provider: resource types are
// "trafficlab:index:<Type>" and PULUMI_DEBUG_PROVIDERS names it.
const Package = "trafficlab"

// Version is the provider's plugin version reported to the engine.
const Version = "0.1.0"

// TypeOf returns the resource type token of a role: "base" becomes
// "trafficlab:index:Base". The token is part of every resource's URN, so it
// must never change for an existing role (a new URN means delete + create,
// which would undo the role on the host and do it again).
func TypeOf(role string) string {
	var b strings.Builder
	up := true
	for _, r := range role {
		if r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return Package + ":index:" + b.String()
}

// Name is the resource name of role on host, "<host>-<role>".
func Name(host, role string) string { return host + "-" + role }

// FileHash is what a resource keeps of a rendered file: its hash, and
// whether the hash is a Pulumi secret (the file holds a password).
type FileHash struct {
	Hash   string
	Secret bool
}

// HashContent returns the value FileHash.Hash holds for content.
func HashContent(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Resource is one role on one host: the inputs the program registers, and
// the state the provider returns (the inputs plus Drift after a probe).
type Resource struct {
	Host    string // inventory host name
	Address string // where SSH reaches it
	Role    string // role name: "base", "zookeeper", ...
	OS      string // "debian 12": a reinstalled host is a changed host
	// Files maps every path the role writes to the hash of its rendered
	// content; a probe replaces the hash of a file that differs on the host.
	Files map[string]FileHash
	// Steps are the identities of the role's steps in order (step.ID's
	// String), so a step added or dropped (a changed setting such as the
	// timezone) shows up in a diff.
	Steps []string
	// Settings are the role's settings beyond files (role.Plan.Settings).
	Settings map[string]string
	// Secrets are the cluster's secrets; kept as one Pulumi secret.
	Secrets map[string]string
	// Values are the stack values the role asks for (role.Value): its
	// steps need them also when a refresh probes them without planning
	// anything.
	Values map[string]string
	// Problem, when set, says the resource could not be planned (its host
	// did not answer, a template failed to render): the resource then
	// counts as changed and its update fails with this message, so the
	// failure is reported for that host while the other hosts go on.
	Problem string
	// Drift (state only) maps a step name to what it would change, as
	// found by the last probe; the next update clears it.
	Drift map[string]string
}

// Property keys, in the camelCase Pulumi programs use.
const (
	keyHost     = "host"
	keyAddress  = "address"
	keyRole     = "role"
	keyOS       = "os"
	keyFiles    = "files"
	keySteps    = "stepIds"
	keySettings = "settings"
	keySecrets  = "secrets"
	keyValues   = "values"
	keyProblem  = "problem"
	keyDrift    = "drift"
)

// legacyValues are top-level properties of resources an older provision
// kept, read as the values they now are, so that an upgrade shows no
// difference where there is none.
var legacyValues = []resource.PropertyKey{"kafkaClusterId"}

// DriftUnreachable is the Drift key of a host that could not be probed.
const DriftUnreachable = "(connection)"

// Properties returns r as Pulumi properties, secrets marked as such.
func (r Resource) Properties() resource.PropertyMap {
	pm := resource.PropertyMap{
		keyHost:    resource.NewProperty(r.Host),
		keyAddress: resource.NewProperty(r.Address),
		keyRole:    resource.NewProperty(r.Role),
		keyOS:      resource.NewProperty(r.OS),
	}
	files := resource.PropertyMap{}
	for p, f := range r.Files {
		v := resource.NewProperty(f.Hash)
		if f.Secret {
			v = resource.MakeSecret(v)
		}
		files[resource.PropertyKey(p)] = v
	}
	pm[keyFiles] = resource.NewProperty(files)
	steps := make([]resource.PropertyValue, len(r.Steps))
	for i, s := range r.Steps {
		steps[i] = resource.NewProperty(s)
	}
	pm[keySteps] = resource.NewProperty(steps)
	pm[keySecrets] = resource.MakeSecret(stringMapProperty(r.Secrets))
	if r.Problem != "" {
		pm[keyProblem] = resource.NewProperty(r.Problem)
	}
	for k, m := range map[resource.PropertyKey]map[string]string{keySettings: r.Settings, keyValues: r.Values, keyDrift: r.Drift} {
		if len(m) > 0 {
			pm[k] = stringMapProperty(m)
		}
	}
	return pm
}

func stringMapProperty(m map[string]string) resource.PropertyValue {
	pm := resource.PropertyMap{}
	for k, v := range m {
		pm[resource.PropertyKey(k)] = resource.NewProperty(v)
	}
	return resource.NewProperty(pm)
}

// FromProperties reads a Resource from inputs or state. Secrets may come
// wrapped or not, depending on whether the engine kept them.
func FromProperties(pm resource.PropertyMap) (Resource, error) {
	var r Resource
	var problems []string
	str := func(k resource.PropertyKey, required bool) string {
		v, ok := pm[k]
		v = unwrap(v)
		switch {
		case !ok || v.IsNull():
			if required {
				problems = append(problems, fmt.Sprintf("%s is missing", k))
			}
			return ""
		case !v.IsString():
			problems = append(problems, fmt.Sprintf("%s is %s, not a string", k, v.TypeString()))
			return ""
		}
		return v.StringValue()
	}
	r.Host = str(keyHost, true)
	r.Address = str(keyAddress, true)
	r.Role = str(keyRole, true)
	r.OS = str(keyOS, false)
	r.Problem = str(keyProblem, false)
	if v := unwrap(pm[keyFiles]); v.IsObject() {
		r.Files = map[string]FileHash{}
		for k, fv := range v.ObjectValue() {
			secret := fv.IsSecret()
			if fv = unwrap(fv); fv.IsString() {
				r.Files[string(k)] = FileHash{Hash: fv.StringValue(), Secret: secret}
			}
		}
	}
	if v := unwrap(pm[keySteps]); v.IsArray() {
		r.Steps = []string{}
		for _, s := range v.ArrayValue() {
			if s = unwrap(s); s.IsString() {
				r.Steps = append(r.Steps, s.StringValue())
			}
		}
	}
	r.Settings = stringMap(pm[keySettings])
	r.Secrets = stringMap(pm[keySecrets])
	r.Values = stringMap(pm[keyValues])
	for _, k := range legacyValues {
		if v := str(k, false); v != "" {
			if r.Values == nil {
				r.Values = map[string]string{}
			}
			r.Values[string(k)] = v
		}
	}
	r.Drift = stringMap(pm[keyDrift])
	if len(problems) > 0 {
		return r, fmt.Errorf("invalid resource properties: %s", strings.Join(problems, "; "))
	}
	return r, nil
}

func stringMap(v resource.PropertyValue) map[string]string {
	v = unwrap(v)
	if !v.IsObject() {
		return nil
	}
	m := map[string]string{}
	for k, e := range v.ObjectValue() {
		if e = unwrap(e); e.IsString() {
			m[string(k)] = e.StringValue()
		}
	}
	return m
}

func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// ChangeKind says how one property differs.
type ChangeKind int

const (
	Added ChangeKind = iota
	Deleted
	Updated
)

func (k ChangeKind) String() string { return [...]string{"added", "deleted", "updated"}[k] }

// Change is one difference between a resource's state and its new inputs.
type Change struct {
	// Key is the Pulumi property path: files["/etc/hosts"], steps, ...
	Key  string
	Kind ChangeKind
	// Detail says in words what differs, never showing a secret.
	Detail string
}

// Diff returns what differs between the state of a resource (old) and
// the inputs the program registers now (new), sorted by key. Drift found
// by a probe counts as a difference, since the host no longer matches.
func Diff(old, new Resource) []Change {
	var out []Change
	str := func(key, o, n string) {
		if o != n {
			out = append(out, Change{Key: key, Kind: Updated, Detail: fmt.Sprintf("%q -> %q", o, n)})
		}
	}
	str(keyAddress, old.Address, new.Address)
	str(keyOS, old.OS, new.OS)
	for _, m := range []struct {
		key      string
		old, new map[string]string
	}{{keySettings, old.Settings, new.Settings}, {keyValues, old.Values, new.Values}} {
		for _, k := range sortedKeys(m.old, m.new) {
			o, inOld := m.old[k]
			n, inNew := m.new[k]
			key := fmt.Sprintf("%s[%q]", m.key, k)
			switch {
			case !inOld:
				out = append(out, Change{Key: key, Kind: Added, Detail: fmt.Sprintf("%s %q", k, n)})
			case !inNew:
				out = append(out, Change{Key: key, Kind: Deleted, Detail: fmt.Sprintf("%s no longer set", k)})
			case o != n:
				out = append(out, Change{Key: key, Kind: Updated, Detail: fmt.Sprintf("%s %q -> %q", k, o, n)})
			}
		}
	}
	if new.Problem != "" {
		out = append(out, Change{Key: keyProblem, Kind: Updated, Detail: new.Problem})
	}
	for _, p := range sortedKeys(old.Files, new.Files) {
		o, inOld := old.Files[p]
		n, inNew := new.Files[p]
		key := fmt.Sprintf("%s[%q]", keyFiles, p)
		switch {
		case !inOld:
			out = append(out, Change{Key: key, Kind: Added, Detail: "new file " + p})
		case !inNew:
			out = append(out, Change{Key: key, Kind: Deleted, Detail: "no longer written " + p})
		case o.Hash != n.Hash:
			detail := "content of " + p + " changed"
			if d, ok := driftedFile(o.Hash); ok {
				detail = p + " differs on the host (" + d + ")"
			}
			out = append(out, Change{Key: key, Kind: Updated, Detail: detail})
		}
	}
	// A state from before steps had identities has none to compare: its
	// files and settings still say what changed.
	if old.Steps != nil && !slices.Equal(old.Steps, new.Steps) {
		out = append(out, Change{Key: keySteps, Kind: Updated, Detail: stepsDetail(old.Steps, new.Steps)})
	}
	if !maps.Equal(old.Secrets, new.Secrets) && new.Problem == "" {
		var which []string
		for _, k := range sortedKeys(old.Secrets, new.Secrets) {
			if old.Secrets[k] != new.Secrets[k] {
				which = append(which, k)
			}
		}
		out = append(out, Change{Key: keySecrets, Kind: Updated, Detail: "changed: " + strings.Join(which, ", ")})
	}
	for _, k := range sortedKeys(old.Drift, nil) {
		out = append(out, Change{Key: fmt.Sprintf("%s[%q]", keyDrift, k), Kind: Updated, Detail: old.Drift[k]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// driftPrefix marks a file hash a probe found on the host rather than
// rendered; the rest is the step's description of the change.
const driftPrefix = "drift: "

// DriftedFileHash is the value a probe puts in place of a file's hash when
// the file differs on the host.
func DriftedFileHash(summary string) string { return driftPrefix + summary }

func driftedFile(hash string) (string, bool) {
	return strings.CutPrefix(hash, driftPrefix)
}

func stepsDetail(old, new []string) string {
	var added, removed []string
	for _, s := range new {
		if !slices.Contains(old, s) {
			added = append(added, s)
		}
	}
	for _, s := range old {
		if !slices.Contains(new, s) {
			removed = append(removed, s)
		}
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "new: "+strings.Join(added, "; "))
	}
	if len(removed) > 0 {
		parts = append(parts, "dropped: "+strings.Join(removed, "; "))
	}
	if len(parts) == 0 {
		return "steps reordered"
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	return slices.Sorted(maps.Keys(seen))
}
