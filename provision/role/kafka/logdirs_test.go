package kafka

import (
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// handleLogDirs teaches the fake host the log directory commands.
func handleLogDirs(h *rt.Host) {
	h.Handle(`^test -e (\S+) \|\| test -L (\S+)$`, false, func(m []string, s sshtest.Session) int {
		_, ok := h.Files[m[1]]
		return rt.Exit(ok)
	})
	h.Handle(`^mkdir -p -- (\S+) && touch -- (\S+)$`, true, func(m []string, s sshtest.Session) int {
		h.Files[m[1]] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
		h.Files[m[2]] = rt.File{Mode: "644", Owner: "root:root"}
		return 0
	})
	h.Handle(`^test -L (\S+) \|\| ! test -f (\S+)$`, false, func(m []string, s sshtest.Session) int {
		f, ok := h.Files[m[2]]
		return rt.Exit(!ok || f.Dir || h.Files[m[1]].Link != "")
	})
	h.Handle(`^rm -rf -- (\S+)$`, true, func(m []string, s sshtest.Session) int {
		for p := range h.Files {
			if p == m[1] || strings.HasPrefix(p, m[1]+"/") {
				delete(h.Files, p)
			}
		}
		return 0
	})
}

// destroy deletes a log directory trafficlab made, and keeps one that was
// there before (the user's, with its data), on a RHEL host.
func TestRemoveDeletesOnlyLogDirsItMade(t *testing.T) {
	h := newHost(rt.NewRHEL())
	handleLogDirs(h)
	h.Files["/data"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
	h.Files["/data/theirs"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
	h.Files["/data/theirs/keep.me"] = rt.File{Content: "the user's", Mode: "644", Owner: "root:root"}
	inv := testInv(t, inventory.KafkaZooKeeper, rt.SHA512(kafkaTarball))
	inv.Kafka.Properties["log.dirs"] = "/data/made,/data/theirs"
	c, tg := rt.Connect(t, h, inv, "kafka-1")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	if _, ok := h.Files["/data/made/"+CreatedMark]; !ok {
		t.Fatal("the directory trafficlab made is not marked")
	}
	if _, ok := h.Files["/data/theirs/"+CreatedMark]; ok {
		t.Fatal("the user's directory was marked as trafficlab's")
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)

	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	if left := h.Paths("/data/made"); len(left) != 0 {
		t.Errorf("destroy left %q", left)
	}
	if f := h.Files["/data/theirs/keep.me"]; f.Content != "the user's" {
		t.Errorf("destroy deleted the user's log directory: %q", h.Paths("/data"))
	}
	if keeps := strings.Join(New().Keeps(c), "; "); !strings.Contains(keeps, "/data/theirs") {
		t.Errorf("Keeps does not say the user's directory stays: %s", keeps)
	}
}

// Even an inventory built by hand, past validation, with log.dirs naming
// system directories never gets them deleted.
func TestRemoveNeverDeletesSystemDirectories(t *testing.T) {
	h := newHost(rt.NewRHEL())
	handleLogDirs(h)
	inv := testInv(t, inventory.KafkaZooKeeper, rt.SHA512(kafkaTarball))
	inv.Kafka.Properties["log.dirs"] = "/, /etc"
	c, tg := rt.Connect(t, h, inv, "kafka-1")
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	for _, cmd := range h.TakeMutating() {
		if f := strings.Fields(cmd); len(f) > 0 && f[0] == "rm" && (slices.Contains(f, "/") || slices.Contains(f, "/etc")) {
			t.Errorf("destroy ran %q", cmd)
		}
	}
	if _, ok := h.Files["/etc/hosts"]; !ok {
		t.Error("destroy deleted /etc")
	}
}
