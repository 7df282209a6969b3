package step

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"github.com/trafficlab/trafficlab/provision/remote"
)

// FileSpec is a whole file trafficlab owns on a host.
type FileSpec struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
	Owner   string // "user" or "user:group"; empty leaves ownership alone
	// Secret files (passwords in a config) never show their content in a
	// dry-run diff.
	Secret bool
}

// File keeps a file's content, mode and owner as given.
func File(f FileSpec) Step {
	return Step{
		ID:   FileID(f.Path),
		Name: "file " + f.Path,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			return checkFile(ctx, t.Host, f)
		},
		Apply: func(ctx context.Context, t *Target) error {
			return t.Host.Upload(ctx, f.Path, f.Content, f.Mode, f.Owner)
		},
	}
}

func checkFile(ctx context.Context, h Host, f FileSpec) (*Change, error) {
	st, err := stat(ctx, h, f.Path)
	if err != nil {
		return nil, err
	}
	if !st.exists {
		return &Change{Summary: "create " + f.Path, Diff: fileDiff(f, "", false)}, nil
	}
	old, err := h.ReadFile(ctx, f.Path)
	if err != nil {
		return nil, err
	}
	var what []string
	diff := ""
	if !bytes.Equal(old, f.Content) {
		what = append(what, "content")
		diff = fileDiff(f, string(old), true)
	}
	if st.mode != f.Mode.Perm() {
		what = append(what, fmt.Sprintf("mode %04o -> %04o", st.mode, f.Mode.Perm()))
	}
	if f.Owner != "" && !st.ownedBy(f.Owner) {
		what = append(what, fmt.Sprintf("owner %s -> %s", st.owner, f.Owner))
	}
	if len(what) == 0 {
		return nil, nil
	}
	return &Change{Summary: "update " + f.Path + ": " + strings.Join(what, ", "), Diff: diff}, nil
}

func fileDiff(f FileSpec, old string, existed bool) string {
	if f.Secret {
		return ""
	}
	from := f.Path
	if !existed {
		from = "/dev/null"
	}
	return udiff.Unified(from, f.Path, old, string(f.Content))
}

type fileStat struct {
	exists bool
	mode   fs.FileMode
	owner  string // user:group
}

func (s fileStat) ownedBy(want string) bool {
	if strings.Contains(want, ":") {
		return s.owner == want
	}
	user, _, _ := strings.Cut(s.owner, ":")
	return user == want
}

// stat asks the host for a file's mode and owner; one command answers both
// and also says whether the file exists.
func stat(ctx context.Context, h Host, path string) (fileStat, error) {
	res, err := h.Run(ctx, "stat -c '%a %U:%G' -- "+remote.ShellQuote(path)+" 2>/dev/null || echo missing")
	if err != nil {
		return fileStat{}, err
	}
	out := strings.TrimSpace(string(res.Stdout))
	if out == "missing" {
		return fileStat{}, nil
	}
	var mode uint32
	var owner string
	if _, err := fmt.Sscanf(out, "%o %s", &mode, &owner); err != nil {
		return fileStat{}, fmt.Errorf("reading mode and owner of %s from %q: %w", path, out, err)
	}
	return fileStat{exists: true, mode: fs.FileMode(mode).Perm(), owner: owner}, nil
}

// BlockMarkers are the lines around a managed block. They name the product
// so a reader of /etc/hosts knows who wrote the lines and that edits inside
// are reverted.
func BlockMarkers(id string) (begin, end string) {
	return "# BEGIN trafficlab " + id, "# END trafficlab " + id
}

// Block keeps the lines between two marker lines in a file as given, and
// leaves every other line of the file alone. A missing file is created with
// mode 0644.
func Block(path, id, content string) Step {
	return blockStep(ID{Kind: KindBlock, Object: path, Block: id}, "block "+id+" in "+path, path, id, content, true)
}

// BlockAbsent removes a block written by Block, markers included.
func BlockAbsent(path, id string) Step {
	return blockStep(ID{Kind: KindBlock, Object: path, Block: id, Absent: true}, "remove block "+id+" from "+path, path, id, "", false)
}

func blockStep(sid ID, name, path, id, content string, present bool) Step {
	return Step{
		ID:   sid,
		Name: name,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			_, old, updated, err := planBlock(ctx, t.Host, path, id, content, present)
			if err != nil || updated == old {
				return nil, err
			}
			verb := "update"
			if !present {
				verb = "remove"
			}
			return &Change{
				Summary: fmt.Sprintf("%s block %q in %s", verb, id, path),
				Diff:    udiff.Unified(path, path, old, updated),
			}, nil
		},
		// Apply reads the file again rather than reuse what Check saw: a
		// Step value may serve several hosts at once, so it holds no state.
		Apply: func(ctx context.Context, t *Target) error {
			st, _, updated, err := planBlock(ctx, t.Host, path, id, content, present)
			if err != nil {
				return err
			}
			mode, owner := fs.FileMode(0o644), ""
			if st.exists {
				mode, owner = st.mode, st.owner
			}
			return t.Host.Upload(ctx, path, []byte(updated), mode, owner)
		},
	}
}

// planBlock reads path and returns its current text and the text it should
// have. A missing file reads as empty.
func planBlock(ctx context.Context, h Host, path, id, content string, present bool) (st fileStat, old, updated string, err error) {
	if st, err = stat(ctx, h, path); err != nil {
		return st, "", "", err
	}
	if st.exists {
		b, err := h.ReadFile(ctx, path)
		if err != nil {
			return st, "", "", err
		}
		old = string(b)
	}
	updated, err = replaceBlock(old, id, content, present)
	if err != nil {
		return st, "", "", fmt.Errorf("%s: %w", path, err)
	}
	return st, old, updated, nil
}

var errUnterminated = errors.New("unterminated block")

// replaceBlock returns text with the block id set to content (present) or
// removed (!present). A block whose end marker is missing is an error
// rather than a guess, so a hand-damaged file is never truncated.
func replaceBlock(text, id, content string, present bool) (string, error) {
	begin, end := BlockMarkers(id)
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var block string
	if present {
		if content != "" && !strings.HasSuffix(content, "\n") {
			content += "\n"
		}
		block = begin + "\n" + content + end + "\n"
	}
	var out strings.Builder
	found := false
	for i := 0; i < len(lines); i++ {
		if strings.TrimRight(lines[i], "\r\n") != begin {
			out.WriteString(lines[i])
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimRight(lines[j], "\r\n") != end {
			j++
		}
		if j == len(lines) {
			return "", fmt.Errorf("%w: %q has no %q after it", errUnterminated, begin, end)
		}
		if !found {
			out.WriteString(block)
		}
		found = true
		i = j
	}
	if !found && present {
		if s := out.String(); s != "" && !strings.HasSuffix(s, "\n") {
			out.WriteString("\n")
		}
		out.WriteString(block)
	}
	return out.String(), nil
}

// FileAbsent keeps a file away, for undoing File.
func FileAbsent(path string) Step {
	return Step{
		ID:   FileID(path).Removal(),
		Name: "remove " + path,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			st, err := stat(ctx, t.Host, path)
			if err != nil || !st.exists {
				return nil, err
			}
			return &Change{Summary: "rm -f " + remote.ShellQuote(path)}, nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			_, err := t.Host.Run(ctx, "rm -f "+remote.ShellQuote(path))
			return err
		},
	}
}
