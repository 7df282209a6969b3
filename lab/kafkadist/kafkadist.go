// Package kafkadist assembles a real Apache Kafka distribution from the
// jars Apache publishes on Maven Central, for the lab (Apache's tarball
// cannot be downloaded here; Maven Central can, DESIGN.md section 9).
//
// The broker is org.apache.kafka:kafka_2.13; its runtime closure is the
// tarball's libs/ except the logging binding, which the POM leaves to the
// application (3.9: slf4j-reload4j and reload4j; 4.x: log4j2's
// log4j-slf4j-impl). A small POM written here resolves them with
// `mvn dependency:copy-dependencies`, every artifact of the closure pinned
// through dependencyManagement from a lock file per release (lock/), so
// the jar set is the same on every machine and a build that resolves any
// other set fails. The launcher scripts and logging configurations in bin/
// and config/ are trafficlab's own, doing what the kafka role needs: the
// broker (kafka.Kafka) and KRaft's storage tool (kafka.tools.StorageTool),
// with the heap from KAFKA_HEAP_OPTS and the logs under LOG_DIR.
//
// The result is laid out like Apache's tarball (kafka_2.13-VERSION/ with
// bin/, config/, libs/), packaged deterministically (lab/tarball) and
// cached by version under the artifacts directory, outside any work tree.
package kafkadist

import (
	"bytes"
	"context"
	"crypto/sha512"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trafficlab/trafficlab/lab/tarball"
)

// Scala is the Scala build of the broker: 4.x has no other.
const Scala = "2.13"

// The releases the lab runs: the newest 3.9.x Maven Central serves for
// ZooKeeper mode (Kafka 4 has none), the newest 4.x for KRaft.
const (
	ZooKeeperVersion = "3.9.2"
	KRaftVersion     = "4.4.0"
)

// packaging names the layout and scripts Package makes, part of the cache
// key beside the version: a change of them must not reuse older builds.
const packaging = "p1"

// DefaultCacheDir keeps built distributions, outside any work tree.
const DefaultCacheDir = "/var/cache/trafficlab/artifacts"

// dependencyPlugin is the maven-dependency-plugin version the POM pins, so
// that Maven does not pick whichever its metadata names newest.
const dependencyPlugin = "3.6.1"

//go:embed lock/*.txt
var locks embed.FS

// Artifact is a built distribution: where it is and its checksum, what the
// inventory's kafka.artifact and kafka.sha512 take.
type Artifact struct {
	Path   string
	SHA512 string
	// Jars is the number of jars in libs/, Bytes their total size.
	Jars  int
	Bytes int64
}

// Coordinate is one Maven artifact of a release's closure.
type Coordinate struct{ Group, Artifact, Version string }

func (c Coordinate) String() string { return c.Group + ":" + c.Artifact + ":" + c.Version }

// Jar is the file name copy-dependencies gives the artifact's jar.
func (c Coordinate) Jar() string { return c.Artifact + "-" + c.Version + ".jar" }

// Release is a Kafka version trafficlab knows how to assemble.
type Release struct {
	Version string
	// Lock is the whole runtime closure, logging binding included.
	Lock []Coordinate
}

// Major is the release's major version.
func (r Release) Major() int {
	if strings.HasPrefix(r.Version, "3.") {
		return 3
	}
	return 4
}

// TopDir is the distribution's top directory, and its file name without
// .tgz, as Apache names them (the kafka role derives its install
// directory from it).
func (r Release) TopDir() string { return "kafka_" + Scala + "-" + r.Version }

// Versions lists the releases there are lock files for.
func Versions() []string {
	entries, _ := locks.ReadDir("lock")
	var out []string
	for _, e := range entries {
		if v, ok := strings.CutPrefix(strings.TrimSuffix(e.Name(), ".txt"), "kafka-"); ok {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// Lookup returns the release of version.
func Lookup(version string) (Release, error) {
	b, err := locks.ReadFile("lock/kafka-" + version + ".txt")
	if err != nil {
		return Release{}, fmt.Errorf("kafka %s: no lock file for it in lab/kafkadist/lock (have: %s)", version, strings.Join(Versions(), ", "))
	}
	r := Release{Version: version}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			return Release{}, fmt.Errorf("lock/kafka-%s.txt:%d: want group:artifact:version, got %q", version, i+1, line)
		}
		r.Lock = append(r.Lock, Coordinate{f[0], f[1], f[2]})
	}
	if _, ok := r.find("org.apache.kafka", "kafka_"+Scala); !ok {
		return Release{}, fmt.Errorf("lock/kafka-%s.txt: no org.apache.kafka:kafka_%s line", version, Scala)
	}
	return r, nil
}

func (r Release) find(group, artifact string) (Coordinate, bool) {
	for _, c := range r.Lock {
		if c.Group == group && c.Artifact == artifact {
			return c, true
		}
	}
	return Coordinate{}, false
}

// binding is the logging binding the broker's POM leaves out: what the
// Apache tarball ships beside it.
func (r Release) binding() []Coordinate {
	var names [][2]string
	if r.Major() == 3 {
		names = [][2]string{{"org.slf4j", "slf4j-reload4j"}, {"ch.qos.reload4j", "reload4j"}}
	} else {
		names = [][2]string{{"org.apache.logging.log4j", "log4j-slf4j-impl"}}
	}
	var out []Coordinate
	for _, n := range names {
		if c, ok := r.find(n[0], n[1]); ok {
			out = append(out, c)
		}
	}
	return out
}

// POM is the project Maven resolves: the broker and its logging binding,
// with every artifact of the closure pinned.
func (r Release) POM() []byte {
	var b bytes.Buffer
	dep := func(indent string, c Coordinate) {
		fmt.Fprintf(&b, "%s<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n", indent, c.Group, c.Artifact, c.Version)
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by trafficlab's lab/kafkadist: resolves Apache Kafka's broker and
     its runtime closure from Maven Central, every version pinned. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>trafficlab.lab</groupId>
  <artifactId>kafka-distribution</artifactId>
  <version>` + r.Version + `</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
`)
	for _, c := range r.Lock {
		dep("      ", c)
	}
	b.WriteString("    </dependencies>\n  </dependencyManagement>\n  <dependencies>\n")
	broker, _ := r.find("org.apache.kafka", "kafka_"+Scala)
	dep("    ", broker)
	for _, c := range r.binding() {
		dep("    ", c)
	}
	b.WriteString(`  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>` + dependencyPlugin + `</version></plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
`)
	return b.Bytes()
}

// Build returns the distribution of version, from the cache when it has
// been built before, else resolving its jars with Maven and packaging
// them. logf, if not nil, hears what takes time.
func Build(ctx context.Context, version, cacheDir string, logf func(format string, args ...any)) (Artifact, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	r, err := Lookup(version)
	if err != nil {
		return Artifact{}, err
	}
	dir := filepath.Join(cacheDir, "kafka-"+r.Version+"-"+packaging)
	path := filepath.Join(dir, r.TopDir()+".tgz")
	if a, err := cached(path); err == nil {
		return a, nil
	}
	mvn, err := Maven()
	if err != nil {
		return Artifact{}, err
	}
	logf("kafka %s: resolving org.apache.kafka:kafka_%s:%s and %d pinned jars with Maven (once)", r.Version, Scala, r.Version, len(r.Lock))
	tmp, err := os.MkdirTemp("", "kafka-dist-")
	if err != nil {
		return Artifact{}, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "pom.xml"), r.POM(), 0o644); err != nil {
		return Artifact{}, err
	}
	libs := filepath.Join(tmp, "libs")
	cmd := exec.CommandContext(ctx, mvn, "-B", "-q", "-f", filepath.Join(tmp, "pom.xml"),
		"org.apache.maven.plugins:maven-dependency-plugin:"+dependencyPlugin+":copy-dependencies",
		"-DincludeScope=runtime", "-DoutputDirectory="+libs)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return Artifact{}, mavenError(r, err, out)
	}
	jars, err := readJars(r, libs)
	if err != nil {
		return Artifact{}, err
	}
	tgz, err := Package(r, jars)
	if err != nil {
		return Artifact{}, err
	}
	if err := tarball.Save(path, tgz); err != nil {
		return Artifact{}, err
	}
	return cached(path)
}

// mavenError says what failed, and whether Maven Central was out of reach.
func mavenError(r Release, err error, out []byte) error {
	text := string(out)
	for _, sign := range []string{"Could not transfer", "Unknown host", "Connection refused", "Connect to", "timed out", "Network is unreachable"} {
		if strings.Contains(text, sign) {
			return fmt.Errorf("kafka %s: Maven could not reach its repository (Maven Central, or the mirror in ~/.m2/settings.xml) to resolve org.apache.kafka:kafka_%s:%s: %w\n%s", r.Version, Scala, r.Version, err, tail(text, 15))
		}
	}
	return fmt.Errorf("kafka %s: mvn dependency:copy-dependencies failed: %w\n%s", r.Version, err, tail(text, 15))
}

// readJars reads libs/ and checks it holds exactly the lock's jars: a
// resolution that differs (a lock file out of date, a repository serving
// something else) must fail rather than ship an unknown set.
func readJars(r Release, libs string) (map[string][]byte, error) {
	entries, err := os.ReadDir(libs)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: Maven copied no jars: %w", r.Version, err)
	}
	want := map[string]bool{}
	for _, c := range r.Lock {
		want[c.Jar()] = true
	}
	jars := map[string][]byte{}
	var extra []string
	for _, e := range entries {
		if !want[e.Name()] {
			extra = append(extra, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(libs, e.Name()))
		if err != nil {
			return nil, err
		}
		jars[e.Name()] = b
	}
	var missing []string
	for n := range want {
		if _, ok := jars[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(extra)+len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("kafka %s: Maven resolved another jar set than lock/kafka-%s.txt: missing %v, not in the lock %v", r.Version, r.Version, missing, extra)
	}
	return jars, nil
}

// cached reads a built distribution's checksum and counts its jars.
func cached(path string) (Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return Artifact{}, err
	}
	jars, size, err := tarball.Count(path, "/libs/", ".jar")
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Path: path, SHA512: hex.EncodeToString(h.Sum(nil)), Jars: jars, Bytes: size}, nil
}

// Maven finds mvn: on PATH, else where Debian's maven package puts it. It
// does not install it: the lab's host packages do (lab/hostpkg).
func Maven() (string, error) {
	if p, err := exec.LookPath("mvn"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/mvn", "/usr/share/maven/bin/mvn"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mvn not found: install Debian's maven package (and a JDK 17) — lab up does so when it runs as root")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
