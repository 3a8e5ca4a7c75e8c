package guest

import (
	"embed"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"unicode/utf16"
)

// scriptFS holds the catalog's PowerShell sources. Each catalog entry is
// scripts/<name>.ps1; the disk scripts are prefixed with the shared
// functions of scripts/lib (see parts).
//
//go:embed scripts/*.ps1 scripts/lib/*.ps1
var scriptFS embed.FS

// commandPrefix is the fixed start of every catalog command line.
const commandPrefix = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "

// MaxCommandLine bounds a catalog command line. cmd.exe, through which
// WinRM starts the command, accepts 8191 characters; every catalog script
// stays well under that.
const MaxCommandLine = 7168

// parts lists the source files a script is assembled from, in order.
func parts(n Name) []string {
	switch n {
	case ClearSafeBootOffline, SetSafeBootOffline:
		return []string{"scripts/lib/diskarg.ps1", "scripts/lib/bcdstore.ps1", "scripts/" + string(n) + ".ps1"}
	case ListDisks:
		return []string{"scripts/lib/disk.ps1", "scripts/" + string(n) + ".ps1"}
	case OnlineDisk, SetDiskIdentity, OfflineDisk:
		return []string{"scripts/lib/disk.ps1", "scripts/lib/diskarg.ps1", "scripts/" + string(n) + ".ps1"}
	}
	return []string{"scripts/" + string(n) + ".ps1"}
}

type catalog struct {
	text   map[Name]string // name → script text, exactly as sent
	cmd    map[Name]string // name → command line
	byLine map[string]Name // command line → name
}

// built is the catalog, assembled once from the embedded sources. It is
// immutable after construction.
var built = sync.OnceValues(build)

func build() (*catalog, error) {
	c := &catalog{text: map[Name]string{}, cmd: map[Name]string{}, byLine: map[string]Name{}}
	for _, n := range Names {
		var b strings.Builder
		for _, p := range parts(n) {
			src, err := scriptFS.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("guest catalog: %s: %w", n, err)
			}
			b.WriteString(minify(string(src)))
		}
		text := b.String()
		line := commandPrefix + EncodeCommand(text)
		if len(line) > MaxCommandLine {
			return nil, fmt.Errorf("guest catalog: %s: command line is %d characters, over %d", n, len(line), MaxCommandLine)
		}
		c.text[n] = text
		c.cmd[n] = line
		c.byLine[line] = n
	}
	return c, nil
}

// minify drops comment-only and blank lines and leading indentation, which
// keeps command lines short. It is safe for the catalog's sources, which use
// no here-strings and no block comments.
func minify(src string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		l = strings.TrimLeft(strings.TrimRight(l, " \t"), " \t")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// EncodeCommand encodes a PowerShell script for -EncodedCommand: base64 of
// its UTF-16LE bytes.
func EncodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		b[2*i] = byte(r)
		b[2*i+1] = byte(r >> 8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCommand reverses EncodeCommand.
func DecodeCommand(encoded string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", err
	}
	if len(b)%2 != 0 {
		return "", fmt.Errorf("encoded command has an odd number of bytes")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// Catalog returns every script's exact text (as encoded on its command
// line), by name. The map is a fresh copy.
func Catalog() map[Name]string {
	c := mustCatalog()
	m := make(map[Name]string, len(c.text))
	for k, v := range c.text {
		m[k] = v
	}
	return m
}

// CommandLine returns the fixed command line that runs script n:
//
//	powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <base64(UTF-16LE(text))>
//
// Its parameters travel separately, as JSON on standard input. The error
// names an unknown script.
func CommandLine(n Name) (string, error) {
	line, ok := mustCatalog().cmd[n]
	if !ok {
		return "", fmt.Errorf("guest: unknown script %q", string(n))
	}
	return line, nil
}

// Lookup recognises a command line byte for byte: it returns the catalog
// script whose CommandLine equals line, and false for anything else.
func Lookup(line string) (Name, bool) {
	n, ok := mustCatalog().byLine[line]
	return n, ok
}

// mustCatalog returns the catalog. The embedded sources are part of the
// binary and checked by the package's tests, so failing to assemble them is
// a build defect.
func mustCatalog() *catalog {
	c, err := built()
	if err != nil {
		panic(err)
	}
	return c
}
