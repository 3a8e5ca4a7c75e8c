package config

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a config file, placed by file, line and
// column and named by its path in the document (e.g.
// tenants[0].accounts[1].zones). It unwraps to the underlying error, so a
// provider's validation error can still be tested with errors.Is.
type FieldError struct {
	File   string
	Line   int // 1-based; 0 if unknown
	Column int // 1-based; 0 if unknown
	Path   string
	Err    error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(":")
	if e.Path != "" {
		b.WriteString(" " + e.Path + ":")
	}
	msg := e.Err.Error()
	if strings.Contains(msg, "\n") {
		// Several problems under one field: one indented line each.
		b.WriteString("\n    " + strings.ReplaceAll(msg, "\n", "\n    "))
	} else {
		b.WriteString(" " + msg)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// walker walks a YAML tree strictly, collecting every problem.
type walker struct {
	file string
	errs []error
}

func (w *walker) add(n *yaml.Node, path string, err error) {
	fe := &FieldError{File: w.file, Path: path, Err: err}
	if n != nil {
		fe.Line, fe.Column = n.Line, n.Column
	}
	w.errs = append(w.errs, fe)
}

func (w *walker) errf(n *yaml.Node, path, format string, args ...any) {
	w.add(n, path, fmt.Errorf(format, args...))
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// fields checks that n is a mapping whose keys are all in valid, with no
// key twice, and returns its values by key (aliases resolved). A null n is
// an empty mapping. ok is false when n is not a mapping.
func (w *walker) fields(n *yaml.Node, path string, valid ...string) (map[string]*yaml.Node, bool) {
	n = resolve(n)
	out := map[string]*yaml.Node{}
	if isNull(n) {
		return out, true
	}
	if n.Kind != yaml.MappingNode {
		w.errf(n, path, "must be a mapping with keys %s", strings.Join(valid, ", "))
		return out, false
	}
	known := map[string]bool{}
	for _, k := range valid {
		known[k] = true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.errf(k, path, "keys must be plain names")
			continue
		}
		kp := join(path, k.Value)
		if !known[k.Value] {
			w.errf(k, kp, "unknown key; valid keys are %s", strings.Join(valid, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			w.errf(k, kp, "given twice")
			continue
		}
		out[k.Value] = resolve(v)
	}
	return out, true
}

// str returns a scalar's text. Null gives "". A mapping or sequence is an
// error. Numbers and booleans are taken as their text.
func (w *walker) str(n *yaml.Node, path string) string {
	n = resolve(n)
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		w.errf(n, path, "must be a string")
		return ""
	}
	return n.Value
}

// integer decodes an integer scalar; def when null. ok is false (and an
// error recorded) when n is not an integer.
func (w *walker) integer(n *yaml.Node, path string, def int) (v int, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return def, true
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		w.errf(n, path, "must be an integer, got %s", describe(n))
		return def, false
	}
	return v, true
}

// boolean decodes true/false; def when null.
func (w *walker) boolean(n *yaml.Node, path string, def bool) bool {
	n = resolve(n)
	if isNull(n) {
		return def
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		w.errf(n, path, "must be true or false, got %s", describe(n))
		return def
	}
	return v
}

// strings decodes a sequence of strings; nil when null. Empty or repeated
// entries are errors.
func (w *walker) strings(n *yaml.Node, path string) []string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.errf(n, path, "must be a list of strings, e.g. [a, b]")
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i, e := range n.Content {
		p := index(path, i)
		s := strings.TrimSpace(w.str(e, p))
		switch {
		case s == "" && resolve(e).Kind == yaml.ScalarNode:
			w.errf(e, p, "must not be empty")
		case seen[s]:
			w.errf(e, p, "%q is listed twice", s)
		case s != "":
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// seq returns a sequence's items; nil (and an error) when n is not one.
func (w *walker) seq(n *yaml.Node, path, what string) []*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.errf(n, path, "must be a list of %s", what)
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, e := range n.Content {
		out[i] = resolve(e)
	}
	return out
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (w *walker) err() error { return errors.Join(w.errs...) }
