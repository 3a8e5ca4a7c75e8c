package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const value = "P@ssw0rd-123456-very-secret"

type holder struct {
	Name string `json:"name" yaml:"name"`
	Pass Secret `json:"pass" yaml:"pass"`
	Ptr  *Secret
}

func TestNeverLeaks(t *testing.T) {
	s := New(value)
	h := holder{Name: "x", Pass: s, Ptr: &s}
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	yamlOf := func(v any) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	textOf := func() string {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	slogOf := func() string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "pw", s, "h", h)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "pw", s)
		return buf.String()
	}
	cases := []struct {
		name string
		got  string
	}{
		{"%v", fmt.Sprintf("%v", s)},
		{"%+v", fmt.Sprintf("%+v", s)},
		{"%#v", fmt.Sprintf("%#v", s)},
		{"%s", fmt.Sprintf("%s", s)},
		{"%q", fmt.Sprintf("%q", s)},
		{"%x", fmt.Sprintf("%x", s)},
		{"%X", fmt.Sprintf("%X", s)},
		{"%d", fmt.Sprintf("%d", s)},
		{"%10.3s", fmt.Sprintf("%10.3s", s)},
		{"pointer %v", fmt.Sprintf("%v", &s)},
		{"struct %v", fmt.Sprintf("%v", h)},
		{"struct %+v", fmt.Sprintf("%+v", h)},
		{"struct %#v", fmt.Sprintf("%#v", h)},
		{"slice %v", fmt.Sprintf("%v", []Secret{s})},
		{"map %v", fmt.Sprintf("%v", map[string]Secret{"k": s})},
		{"Print", fmt.Sprint(s, h)},
		{"String", s.String()},
		{"GoString", s.GoString()},
		{"json", jsonOf(s)},
		{"json struct", jsonOf(h)},
		{"json map", jsonOf(map[string]any{"s": s})},
		{"text", textOf()},
		{"yaml", yamlOf(s)},
		{"yaml struct", yamlOf(h)},
		{"error %w", fmt.Errorf("login failed with %v: %w", s, errors.New("denied")).Error()},
		{"errors.Join", errors.Join(fmt.Errorf("pw=%s", s)).Error()},
		{"slog", slogOf()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Contains(c.got, value) || strings.Contains(c.got, "P@ss") {
				t.Fatalf("leaked: %s", c.got)
			}
			if !strings.Contains(c.got, Redacted) {
				t.Fatalf("no redaction marker in %q", c.got)
			}
		})
	}
}

func TestReveal(t *testing.T) {
	s := New(value)
	if s.Reveal() != value {
		t.Fatal("Reveal lost the value")
	}
	if s.IsZero() || !(Secret{}).IsZero() {
		t.Fatal("IsZero wrong")
	}
	if !s.Equal(New(value)) || s.Equal(New("other")) {
		t.Fatal("Equal wrong")
	}
}
