package guest

import (
	"regexp"
	"strings"
	"testing"
)

func TestCatalogScripts(t *testing.T) {
	cat := Catalog()
	if len(cat) != len(Names) {
		t.Fatalf("catalog has %d scripts, want %d", len(cat), len(Names))
	}
	forbidden := regexp.MustCompile(`(?i)invoke-expression|\biex\b|\[scriptblock\]::create|addscript|-encodedcommand|start-process|invoke-command`)
	for _, n := range Names {
		t.Run(string(n), func(t *testing.T) {
			text, ok := cat[n]
			if !ok {
				t.Fatal("missing from Catalog")
			}
			if !strings.Contains(text, "[Console]::In.ReadToEnd() | ConvertFrom-Json") {
				t.Error("does not read its parameters as JSON from standard input")
			}
			if !strings.Contains(text, "$ErrorActionPreference = 'Stop'") {
				t.Error("does not set $ErrorActionPreference = 'Stop'")
			}
			if !strings.Contains(text, "ConvertTo-Json -Compress") {
				t.Error("does not write compact JSON")
			}
			if m := forbidden.FindString(text); m != "" {
				t.Errorf("contains %q", m)
			}
			line, err := CommandLine(n)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(line, "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ") {
				t.Errorf("command line starts %.80q", line)
			}
			if len(line) > MaxCommandLine {
				t.Errorf("command line is %d characters, over %d", len(line), MaxCommandLine)
			}
			enc := strings.TrimPrefix(line, commandPrefix)
			dec, err := DecodeCommand(enc)
			if err != nil {
				t.Fatal(err)
			}
			if dec != text {
				t.Error("command line does not decode to the catalog text")
			}
			if got, ok := Lookup(line); !ok || got != n {
				t.Errorf("Lookup = %q, %v", got, ok)
			}
			t.Logf("%s: %d characters of script, %d of command line", n, len(text), len(line))
		})
	}
}

func TestLookupRejects(t *testing.T) {
	line, err := CommandLine(Probe)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"empty":           "",
		"trailing space":  line + " ",
		"other script":    commandPrefix + EncodeCommand("Get-Process"),
		"lower-case exe":  strings.Replace(line, "powershell.exe", "PowerShell.exe", 1),
		"script appended": line + "; whoami",
	} {
		if n, ok := Lookup(s); ok {
			t.Errorf("%s: Lookup recognised %q", name, n)
		}
	}
	if _, err := CommandLine("format-c"); err == nil {
		t.Error("CommandLine of an unknown script succeeded")
	}
}

func TestEncodeCommandUTF16(t *testing.T) {
	for _, s := range []string{"", "a", "Write-Output 'é€𝄞'"} {
		got, err := DecodeCommand(EncodeCommand(s))
		if err != nil || got != s {
			t.Errorf("round trip of %q = %q, %v", s, got, err)
		}
	}
	// "a" is 61 00 in UTF-16LE.
	if got := EncodeCommand("a"); got != "YQA=" {
		t.Errorf("EncodeCommand(a) = %q", got)
	}
}
