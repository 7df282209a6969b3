package step

import "strings"

// Kind says what sort of thing a step keeps on a host.
type Kind string

// The kinds of the step helpers. A role's own steps use KindCommand, or a
// kind of their own when other code looks for them.
const (
	KindFile      Kind = "file"      // a whole file: Object is its path
	KindBlock     Kind = "block"     // a managed block: Object is the file, Block the block's name
	KindPackages  Kind = "packages"  // OS packages: Object lists them
	KindService   Kind = "service"   // a systemd unit's state: Object is the unit
	KindUser      Kind = "user"      // a system user: Object is its name
	KindDirectory Kind = "directory" // a directory: Object is its path
	KindFetch     Kind = "fetch"     // a downloaded distribution: Object is its file name
	KindUnpack    Kind = "unpack"    // an unpacked distribution: Object is its directory
	KindLink      Kind = "link"      // a symbolic link: Object is the link
	KindWait      Kind = "wait"      // a wait for a service: Object says for what
	KindOnChange  Kind = "on-change" // a command run after other steps changed something
	KindCommand   Kind = "command"   // anything else: Object is the step's name
)

// ID is a step's identity within one role on one host: what it keeps, and
// which one. The engine keys on it (Pulumi's diff, which steps changed, the
// file a step keeps, the time spent on packages); a step's Name is for
// people only.
type ID struct {
	Kind   Kind
	Object string
	Block  string // KindBlock: the block's name within the file
	// Absent: the step removes what Kind and Object name (destroy).
	Absent bool
}

// String is the identity as one line, "file:/etc/hosts" or
// "-block:/etc/hosts#hosts" for the removal of a block.
func (id ID) String() string {
	var b strings.Builder
	if id.Absent {
		b.WriteByte('-')
	}
	b.WriteString(string(id.Kind))
	b.WriteByte(':')
	b.WriteString(id.Object)
	if id.Block != "" {
		b.WriteByte('#')
		b.WriteString(id.Block)
	}
	return b.String()
}

// IsZero reports whether id was never set.
func (id ID) IsZero() bool { return id == ID{} }

// Path is the file a step keeps whole or in part ("" for other kinds).
func (id ID) Path() string {
	if id.Kind == KindFile || id.Kind == KindBlock {
		return id.Object
	}
	return ""
}

// Removal is the identity of the step that removes what id keeps.
func (id ID) Removal() ID {
	id.Absent = true
	return id
}

// FileID is the identity of the step keeping the file at path.
func FileID(path string) ID { return ID{Kind: KindFile, Object: path} }

// CommandID is the identity of a step of the role's own, by its name.
func CommandID(name string) ID { return ID{Kind: KindCommand, Object: name} }

// IDs returns the identities of steps, in order.
func IDs(steps ...Step) []ID {
	out := make([]ID, len(steps))
	for i, s := range steps {
		out[i] = s.ID
	}
	return out
}
