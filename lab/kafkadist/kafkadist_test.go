package kafkadist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every lock file parses, holds the broker, and pins the logging binding
// its major version needs.
func TestLocks(t *testing.T) {
	vs := Versions()
	if len(vs) < 2 {
		t.Fatalf("lock files for %v; want a 3.9 and a 4.x", vs)
	}
	for _, v := range vs {
		r, err := Lookup(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.binding()) == 0 {
			t.Errorf("%s: no logging binding in the lock", v)
		}
		seen := map[string]bool{}
		for _, c := range r.Lock {
			if seen[c.Group+":"+c.Artifact] {
				t.Errorf("%s: %s:%s pinned twice", v, c.Group, c.Artifact)
			}
			seen[c.Group+":"+c.Artifact] = true
		}
	}
	for _, v := range []string{ZooKeeperVersion, KRaftVersion} {
		if _, err := Lookup(v); err != nil {
			t.Error(err)
		}
	}
	if _, err := Lookup("2.8.0"); err == nil || !strings.Contains(err.Error(), "no lock file") {
		t.Errorf("Lookup(2.8.0) = %v", err)
	}
}

// The POM pins every artifact of the closure and asks for the broker and
// its binding only.
func TestPOM(t *testing.T) {
	r, _ := Lookup(ZooKeeperVersion)
	pom := string(r.POM())
	mgmt, deps, ok := strings.Cut(pom, "</dependencyManagement>")
	if !ok {
		t.Fatal("no dependencyManagement")
	}
	for _, c := range r.Lock {
		line := "<groupId>" + c.Group + "</groupId><artifactId>" + c.Artifact + "</artifactId><version>" + c.Version + "</version>"
		if !strings.Contains(mgmt, line) {
			t.Errorf("%s not pinned", c)
		}
	}
	if n := strings.Count(deps, "<dependency>"); n != 3 {
		t.Errorf("%d direct dependencies, want the broker, slf4j-reload4j and reload4j:\n%s", n, deps)
	}
	if !strings.Contains(pom, "<artifactId>maven-dependency-plugin</artifactId><version>"+dependencyPlugin+"</version>") {
		t.Error("the plugin version is not pinned")
	}
}

// The tarball is laid out like Apache's, with trafficlab's scripts
// executable and the logging configuration of the release's library, and
// the same jars make the same bytes.
func TestPackage(t *testing.T) {
	for _, v := range []string{ZooKeeperVersion, KRaftVersion} {
		r, _ := Lookup(v)
		jars := map[string][]byte{}
		for _, c := range r.Lock {
			jars[c.Jar()] = []byte(c.String())
		}
		a, err := Package(r, jars)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Package(r, jars)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two packagings differ", v)
		}
		files := untar(t, a)
		top := r.TopDir() + "/"
		for _, f := range []string{"bin/kafka-server-start.sh", "bin/kafka-storage.sh", "bin/kafka-run-class.sh", "bin/kafka-server-stop.sh"} {
			if files[top+f].mode&0o111 == 0 {
				t.Errorf("%s: %s missing or not executable", v, f)
			}
		}
		logConf := "config/log4j.properties"
		opt := "-Dlog4j.configuration=file:"
		if r.Major() == 4 {
			logConf, opt = "config/log4j2.properties", "-Dlog4j2.configurationFile="
		}
		if _, ok := files[top+logConf]; !ok {
			t.Errorf("%s: no %s", v, logConf)
		}
		run := files[top+"bin/kafka-run-class.sh"].content
		for _, want := range []string{opt, `-Dkafka.logs.dir="$LOG_DIR"`, `-cp "$base/libs/*"`, "KAFKA_HEAP_OPTS"} {
			if !strings.Contains(run, want) {
				t.Errorf("%s: kafka-run-class.sh lacks %q", v, want)
			}
		}
		if !strings.Contains(files[top+"bin/kafka-storage.sh"].content, "kafka.tools.StorageTool") ||
			!strings.Contains(files[top+"bin/kafka-server-start.sh"].content, "kafka.Kafka") {
			t.Errorf("%s: the scripts do not run the broker and the storage tool", v)
		}
		n := 0
		for name := range files {
			if strings.HasPrefix(name, top+"libs/") && strings.HasSuffix(name, ".jar") {
				n++
			}
		}
		if n != len(r.Lock) {
			t.Errorf("%s: %d jars, want %d", v, n, len(r.Lock))
		}
	}
}

// A resolution that differs from the lock fails, naming the difference.
func TestReadJarsChecksTheLock(t *testing.T) {
	r, _ := Lookup(KRaftVersion)
	dir := t.TempDir()
	for _, c := range r.Lock[1:] {
		os.WriteFile(filepath.Join(dir, c.Jar()), []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "surprise-1.0.jar"), []byte("x"), 0o644)
	_, err := readJars(r, dir)
	if err == nil || !strings.Contains(err.Error(), r.Lock[0].Jar()) || !strings.Contains(err.Error(), "surprise-1.0.jar") {
		t.Errorf("readJars = %v", err)
	}
	os.Remove(filepath.Join(dir, "surprise-1.0.jar"))
	os.WriteFile(filepath.Join(dir, r.Lock[0].Jar()), []byte("x"), 0o644)
	if jars, err := readJars(r, dir); err != nil || len(jars) != len(r.Lock) {
		t.Errorf("readJars on the exact set: %d jars, %v", len(jars), err)
	}
}

type entry struct {
	mode    int64
	content string
}

func untar(t *testing.T, tgz []byte) map[string]entry {
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = entry{h.Mode, string(b)}
	}
}
