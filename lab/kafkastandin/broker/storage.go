package broker

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MetaFile is the file `kafka-storage.sh format` writes into each log
// directory; a KRaft broker refuses to start without it.
const MetaFile = "meta.properties"

// RandomUUID makes an id as Kafka's Uuid.randomUuid does: 16 random bytes
// in URL-safe base64 without padding, never starting with "-".
func RandomUUID() string {
	for {
		var b [16]byte
		rand.Read(b[:])
		if s := base64.RawURLEncoding.EncodeToString(b[:]); s[0] != '-' {
			return s
		}
	}
}

func validUUID(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 16
}

// Format does what `kafka-storage.sh format` does to the log directories
// of a KRaft broker: writes meta.properties with the cluster id and the
// node id. A directory already formatted is an error unless
// ignoreFormatted, as with Kafka.
func Format(props map[string]string, clusterID string, ignoreFormatted bool, out io.Writer) error {
	if props["process.roles"] == "" {
		return fmt.Errorf("the configuration is for a ZooKeeper-mode broker: formatting is only for KRaft mode")
	}
	if !validUUID(clusterID) {
		return fmt.Errorf("cluster id %q is not a Kafka Uuid (22 characters of URL-safe base64)", clusterID)
	}
	c, err := ParseConfig(props)
	if err != nil {
		return err
	}
	dirs := splitList(props["log.dirs"])
	if len(dirs) == 0 {
		dirs = splitList(props["log.dir"])
	}
	if md := props["metadata.log.dir"]; md != "" {
		dirs = append(dirs, md)
	}
	formatted := 0
	for _, dir := range dirs {
		meta := filepath.Join(dir, MetaFile)
		if _, err := os.Stat(meta); err == nil {
			if ignoreFormatted {
				continue
			}
			return fmt.Errorf("log directory %s is already formatted; use --ignore-formatted to ignore this directory and format the others", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		content := fmt.Sprintf("#\n#%s\nnode.id=%d\ndirectory.id=%s\nversion=1\ncluster.id=%s\n",
			time.Now().UTC().Format(time.UnixDate), c.ID, RandomUUID(), clusterID)
		if err := writeFileAtomic(meta, []byte(content)); err != nil {
			return err
		}
		fmt.Fprintf(out, "Formatting %s with metadata.version 3.9-IV0.\n", dir)
		formatted++
	}
	if formatted == 0 && !ignoreFormatted {
		return fmt.Errorf("no log directories to format")
	}
	return nil
}

// ReadMeta reads a log directory's meta.properties; nil when there is none.
func ReadMeta(dir string) (map[string]string, error) {
	p := filepath.Join(dir, MetaFile)
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil, nil
	}
	return ReadProperties(p)
}

// ensureZooKeeperMeta gives a ZooKeeper-mode data directory its
// meta.properties, as Kafka does on first start, and returns the cluster
// id in it.
func ensureZooKeeperMeta(dir string, id int32) (string, error) {
	meta, err := ReadMeta(dir)
	if err != nil {
		return "", err
	}
	if meta != nil {
		if got := meta["broker.id"]; got != "" && got != strconv.Itoa(int(id)) {
			return "", fmt.Errorf("%s/%s is broker %s's, this is broker %d", dir, MetaFile, got, id)
		}
		return meta["cluster.id"], nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cid := RandomUUID()
	content := fmt.Sprintf("#\n#%s\nbroker.id=%d\nversion=0\ncluster.id=%s\n", time.Now().UTC().Format(time.UnixDate), id, cid)
	return cid, writeFileAtomic(filepath.Join(dir, MetaFile), []byte(content))
}

func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
