package step

import (
	"context"

	"github.com/trafficlab/trafficlab/provision/remote"
)

// Command runs apply only when check fails, for changes no other helper
// covers. check must exit 0 exactly when nothing needs doing and must not
// change anything; neither command may carry a secret (commands are logged).
func Command(name, check, apply string) Step {
	return Step{
		ID:   CommandID(name),
		Name: name,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			_, err := t.Host.Run(ctx, check)
			switch {
			case err == nil:
				return nil, nil
			case remote.IsExit(err):
				return &Change{Summary: apply}, nil
			default:
				return nil, err
			}
		},
		Apply: func(ctx context.Context, t *Target) error {
			_, err := t.Host.Run(ctx, apply)
			return err
		},
	}
}

// OnChange runs cmd once when any of the steps after names changed
// something earlier in this run: a reload or restart after a configuration
// change. It has no state of its own on the host to check.
func OnChange(name, cmd string, after ...ID) Step {
	return AfterChange(name, cmd, after, func(ctx context.Context, t *Target) error {
		_, err := t.Host.Run(ctx, cmd)
		return err
	})
}

// AfterChange is a step that runs apply once in a run, when any of the
// steps after names changed something earlier in it; summary says what
// apply does.
func AfterChange(name, summary string, after []ID, apply func(ctx context.Context, t *Target) error) Step {
	id := ID{Kind: KindOnChange, Object: name}
	return Step{
		ID:   id,
		Name: name,
		When: func(t *Target) bool { return t.Changed(after...) },
		Check: func(_ context.Context, t *Target) (*Change, error) {
			// Run marks a step changed before applying it, so the check
			// that follows the apply finds it done.
			if t.Changed(id) {
				return nil, nil
			}
			return &Change{Summary: summary}, nil
		},
		Apply: apply,
	}
}

// Planned is a step whose check works out the one command that would bring
// the host to the wanted state, "" when it is there already; apply works it
// out again and runs it.
func Planned(name string, plan func(ctx context.Context, t *Target) (string, error)) Step {
	return Step{
		ID:   CommandID(name),
		Name: name,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			cmd, err := plan(ctx, t)
			if err != nil || cmd == "" {
				return nil, err
			}
			return &Change{Summary: cmd}, nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			cmd, err := plan(ctx, t)
			if err != nil || cmd == "" {
				return err
			}
			_, err = t.Host.Run(ctx, cmd)
			return err
		},
	}
}
