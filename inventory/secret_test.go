package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const clear = "hunter2-clear-text"

func TestSecretNeverPrintsItsValue(t *testing.T) {
	s := NewSecret(clear)
	m := MySQL{Database: "traffic", User: "consumer", Password: s}
	inv := &Inventory{MySQL: m, SSH: SSH{SudoPassword: s}, LB: LB{AuthPass: s}}

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, m), fmt.Sprintf(verb, &m), fmt.Sprintf(verb, inv))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(m), s.String(), s.GoString())
	for _, v := range []any{s, m, inv} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(y))
	}
	text, _ := s.MarshalText()
	outs = append(outs, string(text))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("connect", "password", s, "mysql", m, "inventory", inv)
		l.Info("attr", slog.Any("secret", s), slog.Group("g", "s", s))
	}
	outs = append(outs, logs.String())

	for _, o := range outs {
		if strings.Contains(o, clear) || strings.Contains(o, fmt.Sprintf("%x", clear)) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(logs.String(), "******") {
		t.Errorf("log shows no mask: %s", logs.String())
	}
	if got := fmt.Sprintf("%v|%+v|%s|%q|%#v", s, s, s, s, s); got != `******|******|******|"******"|inventory.Secret(******)` {
		t.Errorf("formats: %s", got)
	}
	if got := fmt.Sprintf("%+v", m); got != "{Database:traffic User:consumer Password:****** RootPassword:(unset)}" {
		t.Errorf("struct: %s", got)
	}
	if b, _ := json.Marshal(m); string(b) != `{"Database":"traffic","User":"consumer","Password":"******","RootPassword":"(unset)"}` {
		t.Errorf("json: %s", b)
	}
}

func TestSecretValue(t *testing.T) {
	if s := NewSecret(clear); s.Value() != clear || !s.IsSet() {
		t.Errorf("Value %q IsSet %v", s.Value(), s.IsSet())
	}
	var zero Secret
	if zero.IsSet() || zero.String() != "(unset)" || zero.Value() != "" {
		t.Errorf("zero secret: %q %v", zero.String(), zero.IsSet())
	}
	if a, b := NewSecret("a"), NewSecret("a"); a != b {
		t.Errorf("secrets with one value differ")
	}
}

// A secret given through ${VAR} reaches Value but no problem message.
func TestSecretFromEnvironment(t *testing.T) {
	inv := mustParse(t, plus("  auth_pass: ${VRRP}\nmysql:\n  password: ${DB}\n"), env(map[string]string{"VRRP": "short", "DB": clear}))
	if inv.LB.AuthPass.Value() != "short" || inv.MySQL.Password.Value() != clear {
		t.Errorf("values: %q %q", inv.LB.AuthPass.Value(), inv.MySQL.Password.Value())
	}
	_, err := Parse("test.yaml", []byte(plus("  auth_pass: ${VRRP}\n")), env(map[string]string{"VRRP": clear}))
	if err == nil || strings.Contains(err.Error(), clear) {
		t.Errorf("want a length problem without the value, got %v", err)
	}
}
