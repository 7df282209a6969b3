package step

import "context"

// Command runs apply only when check fails, for changes no other helper
// covers. check must exit 0 exactly when nothing needs doing and must not
// change anything; neither command may carry a secret (commands are logged).
func Command(name, check, apply string) Step {
	return Step{
		Name: name,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			_, err := t.Host.Run(ctx, check)
			switch {
			case err == nil:
				return nil, nil
			case isExit(err):
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
