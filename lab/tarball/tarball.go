// Package tarball writes the lab's artifacts (the Kafka distributions, the
// filebeat build) as gzipped tarballs laid out like the vendors' own: every
// file under one top directory. The output depends on nothing but the
// files — names sorted, fixed times and owners — so the same program makes
// the same tarball and the same sha512 in the lab's inventory.
package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// File is one file of the tarball.
type File struct {
	Mode    fs.FileMode
	Content []byte
}

// mtime is every entry's modification time.
var mtime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Write returns the tarball of files (paths relative to top, "/"-separated),
// each preceded by entries for top and the directories it is in.
func Write(top string, files map[string]File) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	header := func(name string, mode fs.FileMode, size int, typ byte) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: int64(mode), Size: int64(size), Typeflag: typ,
			ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX})
	}
	dirs := map[string]bool{}
	for _, n := range names {
		for _, d := range []string{top + "/", top + "/" + path.Dir(n) + "/"} {
			if d == top+"/./" || dirs[d] {
				continue
			}
			dirs[d] = true
			if err := header(d, 0o755, 0, tar.TypeDir); err != nil {
				return nil, err
			}
		}
		f := files[n]
		if err := header(top+"/"+n, f.Mode, len(f.Content), tar.TypeReg); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Count reads the gzipped tarball at file and returns how many regular
// files have a name containing dir and ending in suffix, and their total
// size (what a distribution ships, for reports).
func Count(file, dir, suffix string) (n int, size int64, err error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", file, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, size, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", file, err)
		}
		if h.Typeflag == tar.TypeReg && strings.Contains(h.Name, dir) && strings.HasSuffix(h.Name, suffix) {
			n++
			size += h.Size
		}
	}
}

// Save writes a built tarball into the cache at file, atomically: a reader
// finds the whole tarball or none (a build cut short leaves only a .part).
func Save(file string, tgz []byte) error {
	if err := os.MkdirAll(path.Dir(file), 0o755); err != nil {
		return err
	}
	part := file + ".part"
	if err := os.WriteFile(part, tgz, 0o644); err != nil {
		return err
	}
	return os.Rename(part, file)
}
