package inventory

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Incident describes one bad update: which files it left on disk, which
// copies of them are bad, and when it began. It is the only source of truth
// for what fixfleet may delete.
type Incident struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// StartedAt is when the bad update was published: backups taken before
	// it are clean restore points.
	StartedAt time.Time `json:"started_at" yaml:"started_at"`
	// Directory is the absolute Windows directory holding the files,
	// e.g. `C:\Windows\System32\drivers\CrowdStrike`.
	Directory string `json:"directory" yaml:"directory"`
	// Pattern is a file-name glob inside Directory (`*` and `?` only).
	Pattern string `json:"pattern" yaml:"pattern"`
	// A file is bad when its time stamp lies in [BadFrom, BadUntil).
	BadFrom  time.Time `json:"bad_from" yaml:"bad_from"`
	BadUntil time.Time `json:"bad_until" yaml:"bad_until"`
	// Header, if set, is the hex of the first bytes a bad file starts with;
	// a file in the bad window whose header differs is left alone.
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
}

// CrowdStrike20240719 is the name of the built-in profile of the July 2024
// CrowdStrike Falcon channel-file incident.
const CrowdStrike20240719 = "crowdstrike-2024-07-19"

// BuiltinIncidents returns the profiles compiled into fixfleet, by name.
func BuiltinIncidents() map[string]Incident {
	return map[string]Incident{
		CrowdStrike20240719: {
			Name: CrowdStrike20240719,
			Description: "CrowdStrike Falcon channel file 291 published 2024-07-19 04:09 UTC " +
				"(bad), replaced 05:27 UTC (good); Windows hosts crash at boot while the bad copy is present.",
			StartedAt: time.Date(2024, 7, 19, 4, 9, 0, 0, time.UTC),
			Directory: `C:\Windows\System32\drivers\CrowdStrike`,
			Pattern:   "C-00000291*.sys",
			BadFrom:   time.Date(2024, 7, 19, 4, 9, 0, 0, time.UTC),
			BadUntil:  time.Date(2024, 7, 19, 5, 27, 0, 0, time.UTC),
			Header:    "AAAAAAAA01002301",
		},
	}
}

// LookupIncident returns the built-in profile called name.
func LookupIncident(name string) (Incident, error) {
	builtin := BuiltinIncidents()
	if p, ok := builtin[name]; ok {
		return p, nil
	}
	names := make([]string, 0, len(builtin))
	for n := range builtin {
		names = append(names, n)
	}
	return Incident{}, fmt.Errorf("unknown incident profile %q: built-in profiles are %s; "+
		"or give a YAML file with incident.profile_file", name, strings.Join(names, ", "))
}

// LoadIncidentFile reads a user-defined profile from a YAML file. Unknown keys
// and invalid values are errors that name the file and the field.
func LoadIncidentFile(file string) (Incident, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Incident{}, fmt.Errorf("incident profile: %w", err)
	}
	p, err := ParseIncident(bytes.NewReader(b))
	if err != nil {
		return Incident{}, fmt.Errorf("incident profile %s: %w", file, err)
	}
	return p, nil
}

// ParseIncident decodes and validates one YAML profile, strictly. A
// document that is not a mapping (a password or key file named by mistake)
// is refused without quoting any of it.
func ParseIncident(r io.Reader) (Incident, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Incident{}, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Incident{}, err
	}
	if doc.Kind == 0 {
		return Incident{}, errors.New("empty document")
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return Incident{}, errors.New("not an incident profile: the document must be a YAML mapping of name, started_at, directory, pattern, bad_from, bad_until (see docs/incident-profiles.md)")
	}
	var p Incident
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return Incident{}, err
	}
	return p, p.Validate()
}

var winDirRE = regexp.MustCompile(`^[A-Za-z]:\\([^\\/:*?"<>|\x00-\x1f]+\\?)*$`)

// Validate checks that the profile is usable and safe: an absolute Windows
// directory, a plain glob, a non-empty bad window, hex header bytes.
func (p Incident) Validate() error {
	var errs []error
	if strings.TrimSpace(p.Name) == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if p.StartedAt.IsZero() {
		errs = append(errs, errors.New("started_at: required (RFC 3339 time, e.g. 2024-07-19T04:09:00Z)"))
	}
	if !winDirRE.MatchString(p.Directory) {
		errs = append(errs, fmt.Errorf("directory: %q is not an absolute Windows directory like C:\\Windows\\System32\\drivers\\Vendor", p.Directory))
	}
	if p.Pattern == "" || strings.ContainsAny(p.Pattern, `\/:"<>|[]`) {
		errs = append(errs, fmt.Errorf("pattern: %q must be a file-name glob using only * and ?", p.Pattern))
	} else if _, err := path.Match(p.Pattern, ""); err != nil {
		errs = append(errs, fmt.Errorf("pattern: %q: %v", p.Pattern, err))
	}
	if p.BadFrom.IsZero() || p.BadUntil.IsZero() || !p.BadFrom.Before(p.BadUntil) {
		errs = append(errs, errors.New("bad_from/bad_until: both required, with bad_from before bad_until"))
	}
	if p.Header != "" {
		if _, err := hex.DecodeString(p.Header); err != nil || len(p.Header) > 64 {
			errs = append(errs, fmt.Errorf("header: %q must be up to 32 bytes of hex, e.g. AAAAAAAA01002301", p.Header))
		}
	}
	return errors.Join(errs...)
}

// RelDirectory is Directory without its drive, e.g.
// `Windows\System32\drivers\CrowdStrike`: where the files sit on a volume
// mounted elsewhere.
func (p Incident) RelDirectory() string {
	d := p.Directory
	if len(d) >= 2 && d[1] == ':' {
		d = d[2:]
	}
	return strings.Trim(d, `\`)
}

// Matches reports whether a file name (not a path) matches the profile's
// pattern, case-insensitively as Windows does.
func (p Incident) Matches(name string) bool {
	ok, err := path.Match(strings.ToUpper(p.Pattern), strings.ToUpper(name))
	return err == nil && ok
}

// Verdict says whether one file is the incident's bad copy, and why.
func (p Incident) Verdict(f FileFact) (bad bool, why string) {
	name := f.Path
	if i := strings.LastIndexAny(name, `\/`); i >= 0 {
		name = name[i+1:]
	}
	switch {
	case !p.Matches(name):
		return false, "name does not match " + p.Pattern
	case f.ModTime.Before(p.BadFrom):
		return false, "time stamp " + f.ModTime.UTC().Format(time.RFC3339) + " is before the bad window"
	case !f.ModTime.Before(p.BadUntil):
		return false, "time stamp " + f.ModTime.UTC().Format(time.RFC3339) + " is at or after the fixed update"
	case p.Header != "" && !strings.HasPrefix(strings.ToUpper(f.Header), strings.ToUpper(p.Header)):
		return false, "time stamp is in the bad window but the header does not match " + p.Header
	}
	return true, "time stamp " + f.ModTime.UTC().Format(time.RFC3339) + " in the bad window" +
		map[bool]string{true: " and header matches", false: ""}[p.Header != ""]
}
