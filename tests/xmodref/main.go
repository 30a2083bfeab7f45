// Command xmodref answers questions about Go modules with golang.org/x/mod, the reference
// implementation, for strata's differential tests (crates/core/tests/differential.rs).
//
// It reads one JSON request from stdin, {"calls": [{"op": "...", "args": ["..."], "b64": false}]},
// and writes {"results": [{...}, ...]} to stdout, one result per call, in order. Arguments are
// strings; with "b64": true they are base64 of raw bytes (for input that is not valid UTF-8).
// An unknown op yields {"unknown_op": true}, so the caller notices.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

type call struct {
	Op   string   `json:"op"`
	Args []string `json:"args"`
	B64  bool     `json:"b64"`
}

type result map[string]any

func main() {
	var req struct {
		Calls []call `json:"calls"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "xmodref: bad request:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(req.Calls))
	for _, c := range req.Calls {
		if c.B64 {
			for i, a := range c.Args {
				b, err := base64.StdEncoding.DecodeString(a)
				if err != nil {
					fmt.Fprintln(os.Stderr, "xmodref: bad base64:", err)
					os.Exit(2)
				}
				c.Args[i] = string(b)
			}
		}
		results = append(results, run(c))
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(map[string]any{"results": results}); err != nil {
		fmt.Fprintln(os.Stderr, "xmodref:", err)
		os.Exit(1)
	}
}

func arg(c call, i int) string {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return ""
}

func errResult(err error) result {
	if err != nil {
		return result{"ok": false, "err": err.Error()}
	}
	return result{"ok": true, "err": ""}
}

func strErr(s string, err error) result {
	r := errResult(err)
	r["out"] = s
	return r
}

func run(c call) result {
	a0, a1, a2 := arg(c, 0), arg(c, 1), arg(c, 2)
	switch c.Op {
	case "check_path":
		return errResult(module.CheckPath(a0))
	case "check_import_path":
		return errResult(module.CheckImportPath(a0))
	case "check_file_path":
		return errResult(module.CheckFilePath(a0))
	case "escape_path":
		return strErr(module.EscapePath(a0))
	case "unescape_path":
		return strErr(module.UnescapePath(a0))
	case "escape_version":
		return strErr(module.EscapeVersion(a0))
	case "unescape_version":
		return strErr(module.UnescapeVersion(a0))
	case "split_path_version":
		prefix, major, ok := module.SplitPathVersion(a0)
		return result{"prefix": prefix, "major": major, "ok": ok}
	case "check":
		return errResult(module.Check(a0, a1))
	case "check_path_major":
		return errResult(module.CheckPathMajor(a0, a1))
	case "canonical_version":
		return result{"out": module.CanonicalVersion(a0)}
	case "semver":
		return result{
			"valid":       semver.IsValid(a0),
			"canonical":   semver.Canonical(a0),
			"major":       semver.Major(a0),
			"major_minor": semver.MajorMinor(a0),
			"prerelease":  semver.Prerelease(a0),
			"build":       semver.Build(a0),
		}
	case "compare":
		return result{"cmp": semver.Compare(a0, a1)}
	case "pseudo":
		r := result{"is_pseudo": module.IsPseudoVersion(a0), "is_zero": module.IsZeroPseudoVersion(a0)}
		base, err := module.PseudoVersionBase(a0)
		r["base"], r["base_ok"] = base, err == nil
		t, err := module.PseudoVersionTime(a0)
		r["time"], r["time_ok"] = "", err == nil
		if err == nil {
			r["time"] = t.UTC().Format("20060102150405")
		}
		rev, err := module.PseudoVersionRev(a0)
		r["rev"], r["rev_ok"] = rev, err == nil
		return r
	case "match_prefix_patterns":
		return result{"ok": module.MatchPrefixPatterns(a0, a1)}
	case "hash_go_mod":
		h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(a0)), nil
		})
		return strErr(h, err)
	case "hash_zip":
		return strErr(dirhash.HashZip(a0, dirhash.Hash1))
	case "hash_dir":
		return strErr(dirhash.HashDir(a0, a1, dirhash.Hash1))
	case "check_dir":
		cf, err := modzip.CheckDir(a0)
		return checked(cf, err, a0)
	case "check_zip":
		cf, err := modzip.CheckZip(module.Version{Path: a1, Version: a2}, a0)
		return checked(cf, err, "")
	case "create_from_dir":
		// args: dir, module path, version, output zip file.
		var buf bytes.Buffer
		err := modzip.CreateFromDir(&buf, module.Version{Path: a1, Version: a2}, a0)
		r := errResult(err)
		if err == nil {
			out := arg(c, 3)
			if werr := os.WriteFile(out, buf.Bytes(), 0o644); werr != nil {
				return errResult(werr)
			}
			h, herr := dirhash.HashZip(out, dirhash.Hash1)
			r["h1"], r["hash_err"] = h, errString(herr)
		}
		return r
	case "check_files":
		// args: name/data pairs of in-memory regular files.
		cf, err := modzip.CheckFiles(memFiles(c.Args))
		return checked(cf, err, "")
	case "create_files":
		// args: output zip, module path, version, then name/data pairs.
		var buf bytes.Buffer
		err := modzip.Create(&buf, module.Version{Path: a1, Version: a2}, memFiles(c.Args[3:]))
		r := errResult(err)
		if err == nil {
			if werr := os.WriteFile(a0, buf.Bytes(), 0o644); werr != nil {
				return errResult(werr)
			}
			h, herr := dirhash.HashZip(a0, dirhash.Hash1)
			r["h1"], r["hash_err"] = h, errString(herr)
		}
		return r
	case "unzip":
		// args: zip file, module path, version, destination directory.
		return errResult(modzip.Unzip(arg(c, 3), module.Version{Path: a1, Version: a2}, a0))
	case "write_zip":
		// args: output file, then name/data pairs; stored as archive/zip writes them.
		return errResult(writeZip(a0, c.Args[1:]))
	case "auto_quote":
		return result{"out": modfile.AutoQuote(a0)}
	case "gomod":
		return gomod(a0, a1 == "lax")
	}
	return result{"unknown_op": true}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checked reports a CheckedFiles with paths relative to root (when set) and slash-separated.
func checked(cf modzip.CheckedFiles, err error, root string) result {
	rel := func(p string) string {
		if root == "" {
			return p
		}
		if r, e := filepath.Rel(root, p); e == nil {
			return filepath.ToSlash(r)
		}
		return p
	}
	fes := func(list []modzip.FileError) []map[string]string {
		out := []map[string]string{}
		for _, fe := range list {
			out = append(out, map[string]string{"path": rel(fe.Path), "err": fe.Err.Error()})
		}
		return out
	}
	valid := []string{}
	for _, v := range cf.Valid {
		valid = append(valid, rel(v))
	}
	r := errResult(err)
	r["valid"] = valid
	r["omitted"] = fes(cf.Omitted)
	r["invalid"] = fes(cf.Invalid)
	r["size_err"] = errString(cf.SizeError)
	return r
}

// memFile is a regular file held in memory, for CheckFiles and Create.
type memFile struct {
	name string
	data string
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (os.FileInfo, error)  { return memInfo{f}, nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(f.data)), nil }

type memInfo struct{ f memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() os.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

func memFiles(pairs []string) []modzip.File {
	files := []modzip.File{}
	for i := 0; i+1 < len(pairs); i += 2 {
		files = append(files, memFile{pairs[i], pairs[i+1]})
	}
	return files
}

func writeZip(out string, pairs []string) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(pairs); i += 2 {
		w, err := zw.Create(pairs[i])
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, pairs[i+1]); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func gomod(data string, lax bool) result {
	parse := modfile.Parse
	if lax {
		parse = modfile.ParseLax
	}
	f, err := parse("go.mod", []byte(data), nil)
	r := errResult(err)
	if err != nil {
		return r
	}
	// Absent directives are null; present ones carry their value.
	r["module"], r["deprecated"], r["go"], r["toolchain"] = nil, nil, nil, nil
	if f.Module != nil {
		r["module"] = f.Module.Mod.Path
		r["deprecated"] = f.Module.Deprecated
	}
	if f.Go != nil {
		r["go"] = f.Go.Version
	}
	if f.Toolchain != nil {
		r["toolchain"] = f.Toolchain.Name
	}
	type obj = map[string]any
	req, exc, rep, ret, dbg := []obj{}, []obj{}, []obj{}, []obj{}, []obj{}
	tool, ign := []string{}, []string{}
	for _, x := range f.Require {
		req = append(req, obj{"path": x.Mod.Path, "version": x.Mod.Version, "indirect": x.Indirect})
	}
	for _, x := range f.Exclude {
		exc = append(exc, obj{"path": x.Mod.Path, "version": x.Mod.Version})
	}
	for _, x := range f.Replace {
		rep = append(rep, obj{
			"old_path": x.Old.Path, "old_version": x.Old.Version,
			"new_path": x.New.Path, "new_version": x.New.Version,
		})
	}
	for _, x := range f.Retract {
		ret = append(ret, obj{"low": x.Low, "high": x.High, "rationale": x.Rationale})
	}
	for _, x := range f.Tool {
		tool = append(tool, x.Path)
	}
	for _, x := range f.Ignore {
		ign = append(ign, x.Path)
	}
	for _, x := range f.Godebug {
		dbg = append(dbg, obj{"key": x.Key, "value": x.Value})
	}
	r["require"], r["exclude"], r["replace"], r["retract"] = req, exc, rep, ret
	r["tool"], r["ignore"], r["godebug"] = tool, ign, dbg
	return r
}
