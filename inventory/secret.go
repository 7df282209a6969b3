package inventory

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret holds a password or similar. Every way of printing or encoding it
// (fmt verbs, JSON, YAML, text, slog) shows a mask instead of the value, so
// an inventory can be logged or dumped without leaking it; only Value
// returns the clear text. The zero Secret is "unset": provision generates
// the value (where that makes sense) and keeps it as a Pulumi secret.
type Secret struct {
	v string
}

// NewSecret wraps a clear-text value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Value returns the clear text. Call it only where the value is used, never
// to log it.
func (s Secret) Value() string { return s.v }

// IsSet reports whether a value was given.
func (s Secret) IsSet() bool { return s.v != "" }

// String returns a mask that says whether the secret is set.
func (s Secret) String() string {
	if s.v == "" {
		return "(unset)"
	}
	return "******"
}

// GoString keeps %#v from printing the field inside.
func (s Secret) GoString() string { return "inventory.Secret(" + s.String() + ")" }

// Format covers every fmt verb (%x, %q, %d…), including a Secret nested in
// a struct printed with %v or %+v.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalJSON encodes the mask; the clear text never reaches JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the mask, for encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML encodes the mask, so a dumped inventory carries no secrets.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue makes slog print the mask whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
