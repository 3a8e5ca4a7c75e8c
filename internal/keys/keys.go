// Package keys is fixfleet's source of BitLocker recovery keys.
//
// Keys come from a CSV file the operator exports from wherever they escrow
// them (Active Directory, Entra ID, an MDM, a vault), or, for the simulator,
// from memory. A key is looked up by its recovery-key protector ID, the GUID
// that BitLocker shows on the recovery screen and that a helper VM reports
// for a locked volume.
//
// Recovery keys are secrets: they are held as secret.Secret, and no error
// of this package ever contains one (errors name the file, the line and the
// key ID, which is not secret).
package keys

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/fixfleet/fixfleet/internal/secret"
)

// Column names of the CSV header.
const (
	ColumnKeyID       = "key_id"
	ColumnRecoveryKey = "recovery_key"
)

// Source maps recovery-key protector IDs to recovery keys. It is read-only
// after construction and safe for concurrent use.
type Source struct {
	keys map[string]secret.Secret // normalized ID → key
}

// NormalizeID returns the canonical form of a protector ID: a GUID in upper
// case without braces, e.g. "{1a2b...}" → "1A2B...". It fails for anything
// that is not a GUID. The error quotes the input only when it cannot be key
// material (swapped CSV columns put a recovery key where the ID belongs).
func NormalizeID(id string) (string, error) {
	s := strings.TrimSpace(id)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	s = strings.ToUpper(s)
	ok := len(s) == 36
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			ok = c == '-'
		default:
			ok = c >= '0' && c <= '9' || c >= 'A' && c <= 'F'
		}
	}
	if !ok {
		const want = "is not a GUID like 01234567-89AB-CDEF-0123-456789ABCDEF"
		if mayBeKey(id) {
			return "", errors.New("key ID (value withheld: it looks like a recovery key; are the columns swapped?) " + want)
		}
		return "", fmt.Errorf("key ID %q %s", id, want)
	}
	return s, nil
}

// mayBeKey reports whether s holds a run of 6 or more digits, as recovery
// keys do, or is too long to quote safely.
func mayBeKey(s string) bool {
	if len(s) > 40 {
		return true
	}
	run := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			run++
			if run >= 6 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// errKeyFormat never includes the key itself.
var errKeyFormat = errors.New("recovery key is not 48 digits in 8 dash-separated groups of 6, each a multiple of 11 below 720896")

// CheckRecoveryKey validates BitLocker's recovery-password format: 48 digits
// in 8 groups of 6 separated by dashes, where each group is a multiple of 11
// and its quotient by 11 fits in 16 bits. The error never contains the key.
func CheckRecoveryKey(key string) error {
	groups := strings.Split(key, "-")
	if len(groups) != 8 {
		return errKeyFormat
	}
	for _, g := range groups {
		if len(g) != 6 {
			return errKeyFormat
		}
		for _, c := range g {
			if c < '0' || c > '9' {
				return errKeyFormat
			}
		}
		n, err := strconv.Atoi(g)
		if err != nil || n%11 != 0 || n/11 > 0xFFFF {
			return errKeyFormat
		}
	}
	return nil
}

// FormatRecoveryKey builds a well-formed recovery key from its eight 16-bit
// blocks, as BitLocker does (each block times 11, six digits). The simulator
// uses it to mint keys.
func FormatRecoveryKey(blocks [8]uint16) secret.Secret {
	var b strings.Builder
	for i, v := range blocks {
		if i > 0 {
			b.WriteByte('-')
		}
		fmt.Fprintf(&b, "%06d", int(v)*11)
	}
	return secret.New(b.String())
}

// FromMap builds a source from protector IDs to recovery keys, validating
// both. The error names offending IDs, never keys.
func FromMap(m map[string]string) (*Source, error) {
	ss := make(map[string]secret.Secret, len(m))
	for id, k := range m {
		ss[id] = secret.New(k)
	}
	return FromSecrets(ss)
}

// FromSecrets is FromMap for keys already held as secrets, such as the
// simulated world's escrowed keys (world.EscrowedKeys), so that callers
// need not reveal them.
func FromSecrets(m map[string]secret.Secret) (*Source, error) {
	s := &Source{keys: make(map[string]secret.Secret, len(m))}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		n, err := NormalizeID(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := secret.New(strings.TrimSpace(m[id].Reveal()))
		if err := CheckRecoveryKey(k.Reveal()); err != nil {
			errs = append(errs, fmt.Errorf("key ID %s: %w", n, err))
			continue
		}
		if old, dup := s.keys[n]; dup && !old.Equal(k) {
			errs = append(errs, fmt.Errorf("key ID %s: given twice with different recovery keys", n))
			continue
		}
		s.keys[n] = k
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadCSV reads a key file. The first record must be a header naming the
// columns key_id and recovery_key (in any order, case-insensitive; other
// columns, such as a host name, are ignored). Blank lines and lines starting
// with # are skipped. Key IDs are GUIDs, with or without braces, in any
// case. A key ID listed twice with the same key is fine; with different
// keys it is an error. All problems are reported together, each naming the
// file and line; no error contains a recovery key.
func LoadCSV(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("BitLocker key file: %w (check keys.bitlocker_csv in the config)", err)
	}
	defer f.Close()
	s, err := parseCSV(f, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func parseCSV(r io.Reader, name string) (*Source, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = false

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file: the first line must be the header %s,%s", name, ColumnKeyID, ColumnRecoveryKey)
	}
	if err != nil {
		return nil, csvErr(name, err)
	}
	idCol, keyCol := -1, -1
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case ColumnKeyID:
			idCol = i
		case ColumnRecoveryKey:
			keyCol = i
		}
	}
	if idCol < 0 || keyCol < 0 {
		line, _ := cr.FieldPos(0)
		// The header is not secret only if it is a header; if the first
		// line is data, it may hold a key, so do not echo it.
		return nil, fmt.Errorf("%s:%d: missing header: the first line must name the columns %s,%s", name, line, ColumnKeyID, ColumnRecoveryKey)
	}

	s := &Source{keys: map[string]secret.Secret{}}
	firstLine := map[string]int{}
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, csvErr(name, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err != csv.ErrFieldCount {
				// The reader cannot resynchronise reliably after a
				// quoting error; stop here.
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= idCol || len(rec) <= keyCol {
			errs = append(errs, fmt.Errorf("%s:%d: expected at least %d fields, got %d", name, line, max(idCol, keyCol)+1, len(rec)))
			continue
		}
		id, err := NormalizeID(rec[idCol])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", name, line, ColumnKeyID, err))
			continue
		}
		raw := strings.TrimSpace(rec[keyCol])
		if raw == "" {
			errs = append(errs, fmt.Errorf("%s:%d: key ID %s: %s is empty", name, line, id, ColumnRecoveryKey))
			continue
		}
		if err := CheckRecoveryKey(raw); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: key ID %s: %w", name, line, id, err))
			continue
		}
		k := secret.New(raw)
		if old, dup := s.keys[id]; dup {
			if !old.Equal(k) {
				errs = append(errs, fmt.Errorf("%s:%d: key ID %s: also on line %d with a different recovery key; keep the right one", name, line, id, firstLine[id]))
			}
			continue
		}
		s.keys[id] = k
		firstLine[id] = line
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// csvErr renders a csv reader error without record content: only the
// file, the line, the column and the kind of problem are shown.
func csvErr(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: malformed CSV at column %d: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: malformed CSV", name)
}

// HasKey reports whether the source holds a key for protector id (any GUID
// spelling).
func (s *Source) HasKey(id string) bool {
	_, ok := s.Key(id)
	return ok
}

// Key returns the recovery key for protector id (any GUID spelling).
func (s *Source) Key(id string) (secret.Secret, bool) {
	if s == nil {
		return secret.Secret{}, false
	}
	n, err := NormalizeID(id)
	if err != nil {
		return secret.Secret{}, false
	}
	k, ok := s.keys[n]
	return k, ok
}

// Len returns the number of keys held.
func (s *Source) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// IDs returns the normalized protector IDs held, sorted. IDs are not secret.
func (s *Source) IDs() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.keys))
	for id := range s.keys {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
