//go:build linux

package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

// modeWatch watches, with inotify, every file and directory that appears
// under root (and files named tmpPrefix* in tmp, where uploads of non-root
// users used to go) and records each moment another user could have read
// one: a mode wider than the final one, group bits for another group, or
// a file others may open through directories they may enter.
type modeWatch struct {
	t         *testing.T
	fd        int
	root, tmp string
	tmpPrefix string
	final     fs.FileMode
	gid       uint32

	mu      sync.Mutex
	dirs    map[int32]string
	entries int // entries seen appear, staging ones included
	bad     []string
	stop    chan struct{}
	done    chan struct{}
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_MODIFY

func watchModes(t *testing.T, root, tmp string, final fs.FileMode, gid uint32) *modeWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	w := &modeWatch{t: t, fd: fd, root: root, tmp: tmp, tmpPrefix: "trafficlab-", final: final, gid: gid,
		dirs: map[int32]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	w.add(root)
	if tmp != "" {
		w.add(tmp)
	}
	go w.loop()
	t.Cleanup(func() { w.close() })
	return w
}

func (w *modeWatch) add(dir string) {
	wd, err := unix.InotifyAddWatch(w.fd, dir, watchMask)
	if err != nil {
		return // gone already
	}
	w.mu.Lock()
	w.dirs[int32(wd)] = dir
	w.mu.Unlock()
}

func (w *modeWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 20); n <= 0 {
			continue
		}
		n, err := unix.Read(w.fd, buf)
		if err != nil || n <= 0 {
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.mu.Lock()
			dir := w.dirs[ev.Wd]
			w.mu.Unlock()
			if dir == "" || name == "" {
				continue
			}
			w.saw(filepath.Join(dir, name), ev.Mask)
		}
	}
}

func (w *modeWatch) saw(p string, mask uint32) {
	inTmp := w.tmp != "" && filepath.Dir(p) == w.tmp
	if inTmp && !strings.HasPrefix(filepath.Base(p), w.tmpPrefix) {
		return
	}
	if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		w.mu.Lock()
		w.entries++
		w.mu.Unlock()
	}
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil {
		return
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if mask&unix.IN_CREATE != 0 && !inTmp {
			w.add(p)
			// Whatever appeared before the watch did.
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				w.saw(filepath.Join(p, e.Name()), unix.IN_CREATE)
			}
		}
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	mode := fs.FileMode(st.Mode & 0o777)
	var why []string
	if mode&^w.final != 0 {
		why = append(why, fmt.Sprintf("mode %04o is wider than the final %04o", mode, w.final))
	}
	if mode&0o070 != 0 && st.Gid != w.gid {
		why = append(why, fmt.Sprintf("group bits %04o for gid %d, not %d", mode&0o070, st.Gid, w.gid))
	}
	if mode&0o004 != 0 && w.othersCanEnter(filepath.Dir(p)) {
		why = append(why, "other users could open it")
	}
	if len(why) > 0 {
		w.mu.Lock()
		w.bad = append(w.bad, p+": "+strings.Join(why, "; "))
		w.mu.Unlock()
	}
}

// othersCanEnter reports whether users other than the owner may traverse
// every directory from the watched one (taken as reachable, like /etc) down
// to dir.
func (w *modeWatch) othersCanEnter(dir string) bool {
	for d := dir; d != w.root && d != w.tmp && d != "/" && d != "."; d = filepath.Dir(d) {
		var st unix.Stat_t
		if unix.Stat(d, &st) != nil || st.Mode&0o001 == 0 {
			return false
		}
	}
	return true
}

func (w *modeWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
		<-w.done
		unix.Close(w.fd)
	}
}

// result stops the watch, after a moment for the last events, and returns
// how many entries appeared and every violation seen.
func (w *modeWatch) result() (int, []string) {
	time.Sleep(100 * time.Millisecond)
	w.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.entries, append([]string(nil), w.bad...)
}

// secretUploads uploads n different secrets to dir with mode and owner and
// checks that no other user could ever have read one of them.
func secretUploads(t *testing.T, c *remote.Client, dir string, n int, mode fs.FileMode, owner string, gid uint32) {
	t.Helper()
	w := watchModes(t, dir, "/tmp", mode, gid)
	// The watch itself must see a file that is too wide, or the test could
	// not fail.
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		caught := len(w.bad) > 0
		w.bad = nil
		w.entries = 0
		w.mu.Unlock()
		if caught {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch did not notice a 0644 file: it cannot test anything")
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(probe)

	ctx := context.Background()
	for i := range n {
		secret := make([]byte, 16)
		rand.Read(secret)
		content := []byte("password=" + hex.EncodeToString(secret) + "\n")
		p := filepath.Join(dir, fmt.Sprintf("secret-%d.cnf", i))
		if err := c.Upload(ctx, p, content, mode, owner); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s holds %q (%v), want %q", p, got, err, content)
		}
		fi, _ := os.Stat(p)
		if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != mode || (owner != "" && st.Gid != gid) {
			t.Fatalf("%s: mode %v gid %d, want %v gid %d", p, fi.Mode().Perm(), st.Gid, mode, gid)
		}
	}
	entries, bad := w.result()
	if len(bad) > 0 {
		t.Errorf("%d of %d moments where another user could read a secret during its upload:\n%s", len(bad), n, strings.Join(bad, "\n"))
	}
	if entries < n {
		t.Errorf("the watch saw %d entries appear for %d uploads: it missed them", entries, n)
	}
	if left, _ := os.ReadDir(dir); len(left) != n {
		t.Errorf("%d entries left in %s, want the %d files", len(left), dir, n)
	}
}

// A secret is never readable by another user while it is uploaded, through
// OpenSSH's own sftp-server (which creates files with the session's umask),
// for a root login and for a user who uploads through sudo.
func TestSecretUploadIsNeverReadableByOthers(t *testing.T) {
	sftpServer := sshtest.RequireSFTPServer(t)
	// sshd's usual umask, whatever the test runner's is.
	sftpArgs := []string{"-u", "022"}
	dest := func(t *testing.T) string {
		dir := t.TempDir()
		// Like /etc/keepalived: any user may enter it.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	gid := uint32(os.Getgid())

	t.Run("root", func(t *testing.T) {
		srv := sshtest.New(t, sshtest.WithSFTPServer(sftpServer, sftpArgs...))
		c := connect(t, srv.Config(t))
		secretUploads(t, c, dest(t), 20, 0o600, "", gid)
	})
	t.Run("sudo", func(t *testing.T) {
		srv := sshtest.New(t, sshtest.WithUser("deploy"),
			sshtest.WithHandler(sshtest.Sudo("", sshtest.ShellHandler())),
			sshtest.WithSFTPServer(sftpServer, sftpArgs...))
		c := connect(t, srv.Config(t))
		secretUploads(t, c, dest(t), 20, 0o600, "", gid)
	})
	t.Run("group", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a file to another group needs root")
		}
		srv := sshtest.New(t, sshtest.WithSFTPServer(sftpServer, sftpArgs...))
		c := connect(t, srv.Config(t))
		// keepalived.conf-like: readable by one group only once it is
		// theirs.
		secretUploads(t, c, dest(t), 10, 0o640, "nobody:nogroup", 65534)
	})
}
