package keys

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/secret"
)

const (
	k0 = "466895-217492-569250-069608-104434-135707-527241-083622"
	k1 = "309540-054054-123915-625218-602910-100716-346984-130779"
	k2 = "612062-085217-178486-321860-089188-571923-071489-318747"
)

// sixDigits finds key groups in a fixture, to prove errors never echo them.
var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

func groupsIn(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sixDigits.FindAllString(sc.Text(), -1)...)
	}
	return out
}

func TestLoadCSV(t *testing.T) {
	tests := []struct {
		file    string
		wantErr []string // substrings, all required
		want    map[string]string
		absent  []string
	}{
		{file: "valid.csv", want: map[string]string{
			"1A2B3C4D-0000-4000-8000-00000000000A":   k0,
			"{1a2b3c4d-0000-4000-8000-00000000000a}": k0,
			"1a2b3c4d-0000-4000-8000-00000000000b":   k1,
			"2A2B3C4D-0000-4000-8000-00000000000C":   k2,
		}, absent: []string{"1A2B3C4D-0000-4000-8000-00000000000D", "", "garbage"}},
		{file: "extra_columns.csv", want: map[string]string{
			"1A2B3C4D-0000-4000-8000-00000000000A": k0,
			"1A2B3C4D-0000-4000-8000-00000000000B": k1,
		}},
		{file: "empty.csv", wantErr: []string{"empty.csv", "empty file", "key_id,recovery_key"}},
		{file: "no_header.csv", wantErr: []string{"no_header.csv:1:", "missing header"}},
		{file: "bad_id.csv", wantErr: []string{"bad_id.csv:3:", "key_id", "not-a-guid", "not a GUID"}},
		{file: "bad_keys.csv", wantErr: []string{
			"bad_keys.csv:2: key ID 1A2B3C4D-0000-4000-8000-000000000001: recovery key is not",
			"bad_keys.csv:3: key ID 1A2B3C4D-0000-4000-8000-000000000002",
			"bad_keys.csv:4: key ID 1A2B3C4D-0000-4000-8000-000000000003",
			"bad_keys.csv:5: key ID 1A2B3C4D-0000-4000-8000-000000000004",
			"bad_keys.csv:6: key ID 1A2B3C4D-0000-4000-8000-000000000005: recovery_key is empty",
		}},
		{file: "duplicate.csv", wantErr: []string{"duplicate.csv:4:", "1A2B3C4D-0000-4000-8000-00000000000A", "also on line 2", "different recovery key"}},
		{file: "short_row.csv", wantErr: []string{"short_row.csv:2:", "expected at least 2 fields, got 1"}},
		{file: "bad_quote.csv", wantErr: []string{"bad_quote.csv:", "malformed CSV"}},
		{file: "swapped_columns.csv", wantErr: []string{"swapped_columns.csv:2:", "value withheld", "columns swapped"}},
		{file: "missing.csv", wantErr: []string{"missing.csv", "keys.bitlocker_csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			s, err := LoadCSV(path)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("want error, got source with %d keys", s.Len())
				}
				msg := err.Error()
				for _, w := range tt.wantErr {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q does not contain %q", msg, w)
					}
				}
				if _, statErr := os.Stat(path); statErr == nil {
					for _, g := range groupsIn(t, path) {
						if strings.Contains(msg, g) {
							t.Errorf("error leaks key material %q: %s", g, msg)
						}
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for id, want := range tt.want {
				if !s.HasKey(id) {
					t.Errorf("HasKey(%q) = false", id)
				}
				got, ok := s.Key(id)
				if !ok || got.Reveal() != want {
					t.Errorf("Key(%q) wrong", id)
				}
			}
			for _, id := range tt.absent {
				if s.HasKey(id) {
					t.Errorf("HasKey(%q) = true", id)
				}
			}
		})
	}
}

func TestCheckRecoveryKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{k0, true},
		{"000000-000000-000000-000000-000000-000000-000000-000000", true},
		{"720885-000000-000000-000000-000000-000000-000000-000000", true}, // 65535*11
		{"720896-000000-000000-000000-000000-000000-000000-000000", false},
		{"000001-000000-000000-000000-000000-000000-000000-000000", false},
		{"00000-000000-000000-000000-000000-000000-000000-0000000", false},
		{"000000-000000-000000-000000-000000-000000-000000", false},
		{"000000-000000-000000-000000-000000-000000-000000-000000-000000", false},
		{"00000a-000000-000000-000000-000000-000000-000000-000000", false},
		{"+00011-000000-000000-000000-000000-000000-000000-000000", false},
		{"", false},
	}
	for _, tt := range tests {
		err := CheckRecoveryKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("CheckRecoveryKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && tt.key != "" && strings.Contains(err.Error(), tt.key) {
			t.Errorf("error echoes key: %v", err)
		}
	}
}

func TestFormatRecoveryKey(t *testing.T) {
	k := FormatRecoveryKey([8]uint16{0, 1, 2, 65535, 42445, 19772, 51749, 9101})
	if err := CheckRecoveryKey(k.Reveal()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Reveal(), "000000-000011-000022-720885-") {
		t.Fatalf("got %s", k.Reveal())
	}
}

func TestFromMap(t *testing.T) {
	s, err := FromMap(map[string]string{
		"{1a2b3c4d-0000-4000-8000-00000000000a}": k0,
		"1A2B3C4D-0000-4000-8000-00000000000B":   k1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || !s.HasKey("1a2b3c4d-0000-4000-8000-00000000000A") {
		t.Fatalf("bad source: %v", s.IDs())
	}
	_, err = FromMap(map[string]string{
		"1A2B3C4D-0000-4000-8000-00000000000A":   k0,
		"{1A2B3C4D-0000-4000-8000-00000000000A}": k1,
		"nope":                                   k2,
		"1A2B3C4D-0000-4000-8000-00000000000C":   "987654-321",
	})
	if err == nil {
		t.Fatal("want error")
	}
	for _, w := range []string{"different recovery keys", "nope", "00000000000C"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	for _, k := range []string{k0, k1, k2, "987654"} {
		if strings.Contains(err.Error(), k) {
			t.Errorf("error leaks key %q: %v", k, err)
		}
	}
	fs, err := FromSecrets(map[string]secret.Secret{"1A2B3C4D-0000-4000-8000-00000000000A": secret.New(k0)})
	if err != nil || !fs.HasKey("{1a2b3c4d-0000-4000-8000-00000000000a}") {
		t.Fatalf("FromSecrets: %v", err)
	}
	var nilSrc *Source
	if nilSrc.HasKey("1A2B3C4D-0000-4000-8000-00000000000A") || nilSrc.Len() != 0 {
		t.Fatal("nil source must be empty")
	}
}
